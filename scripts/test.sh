#!/usr/bin/env bash
# make test: vet, then every package's tests (unit, integration, acceptance)
# against the real local stack. CI=true turns a missing prerequisite into a
# failure instead of a skip.
set -euo pipefail
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$repo"
go vet ./...
exec bash scripts/with-stack.sh go test -count=1 -timeout 40m ./...
