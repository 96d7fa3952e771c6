#!/usr/bin/env bash
# make bench: each figure beside its reference, measured in the same run.
set -euo pipefail
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$repo"

# Backup schedule planning has a target rather than a reference: the next
# daily dump of 10,000 instances planned in under 100 ms.
go test -count=1 -run '^$' -bench 'PlanNextRuns10000' -benchtime=20x ./scheduler/ |
	awk '/^BenchmarkPlanNextRuns10000/ { printf "backup schedule: next run of 10000 instances planned in %.1f ms (target < 100 ms)\n", $3 / 1e6 }'

exec bash scripts/with-stack.sh go test -count=1 -timeout 30m -run '^$' -bench . -benchtime=1x ./acceptance/
