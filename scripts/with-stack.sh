#!/usr/bin/env bash
# with-stack.sh CMD...: bring the local stack up (scripts/stack.sh), export its
# environment, run CMD, and afterwards stop only the components this call
# started (a stack that was already up stays up).
set -euo pipefail
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
stack="$repo/scripts/stack.sh"

was_up=false
if bash "$stack" status >/dev/null 2>&1; then
	was_up=true
fi

cleanup() {
	local rc=$?
	if [[ $was_up == false ]]; then
		bash "$stack" down || true
	fi
	exit "$rc"
}
# Set before up: an up that fails half way (Nomad missing after the state
# database and etcd started) must not leave those running.
trap cleanup EXIT
trap 'exit 130' INT TERM

bash "$stack" up
# shellcheck disable=SC1090
eval "$(bash "$stack" env)"

"$@"
