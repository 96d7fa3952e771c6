#!/usr/bin/env bash
# make bench: each figure beside its reference, measured in the same run.
set -euo pipefail
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$repo"
exec bash scripts/with-stack.sh go test -count=1 -timeout 30m -run '^$' -bench . -benchtime=1x ./acceptance/
