#!/usr/bin/env bash
# make bench: each figure beside its reference, measured in the same run.
set -euo pipefail
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$repo"

# Backup schedule planning has a target rather than a reference: the next
# daily dump of 10,000 instances planned in under 100 ms.
go test -count=1 -run '^$' -bench 'PlanNextRuns10000' -benchtime=20x ./scheduler/ |
	awk '/^BenchmarkPlanNextRuns10000/ { printf "backup schedule: next run of 10000 instances planned in %.1f ms (target < 100 ms)\n", $3 / 1e6 }'

# Metrics sampling has a target and a reference: a round over 1,000
# simulated instances under 5% of one core at the 15s interval, beside what
# a fresh TLS and SCRAM login per instance and round would cost.
go test -count=1 -run '^$' -bench 'SamplingRound1000' -benchtime=20x ./sampler/ |
	awk '/^BenchmarkSamplingRound1000/ { for (i = 3; i < NF; i += 2) m[$(i+1)] = $i
		printf "metrics sampling (%s): %.2f%% of one core per 15s round, heap %.1f MiB (target < 5%%); a fresh login per instance every round would add %.1f%%, spread over 5m %.2f%%\n", $1, m["core-%"], m["heap-MiB"], m["fresh-login-core-%"], m["spread-login-core-%"] }'

exec bash scripts/with-stack.sh go test -count=1 -timeout 90m -run '^$' -bench . -benchtime=1x ./acceptance/
