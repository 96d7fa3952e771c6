#!/usr/bin/env bash
# make test: vet, then every package's tests (unit, integration, acceptance)
# against the real local stack. CI=true turns a missing prerequisite into a
# failure instead of a skip. go test's JSON goes whole to
# .stack/logs/test.json; tools/testreport prints each package's result, the
# output of failed tests, the slowest tests and the counts.
set -euo pipefail
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$repo"
go vet ./...
go vet -tags stackrestart ./acceptance
go build -o bin/testreport ./tools/testreport
mkdir -p .stack/logs
export PGBROKER_TEST_TIMEOUT=${PGBROKER_TEST_TIMEOUT:-45m}
# Then, alone, the tests that restart the whole stack (build tag
# stackrestart): run beside the other packages, they would take every other
# test's instances down with it.
export PGBROKER_RESTART_TESTS='^(TestWholeStackRestartBringsEveryInstanceBack|TestDeploymentRestoredFromItsBackupsBringsInstancesBack)$'
exec bash scripts/with-stack.sh bash -c '
	set -o pipefail
	{
		go test -json -count=1 -timeout "$PGBROKER_TEST_TIMEOUT" ./...
		all=$?
		go test -json -count=1 -timeout 20m -tags stackrestart -run "$PGBROKER_RESTART_TESTS" ./acceptance
		exit $((all | $?))
	} | tee .stack/logs/test.json | bin/testreport'
