#!/usr/bin/env bash
# smoke.sh: the first run of a new user, end to end (issue 11, item 1).
# A fresh clone of HEAD with no .stack, `make run` in the background, the
# README's calls (provision Starter, poll, bind), `psql "$DATABASE_URL"`
# exactly as bind returned it (no CA file, empty HOME), deprovision, then
# Ctrl-C. Fails if any step fails, or if a process, mount or listener of the
# clone's stack is left behind. Takes about 3 minutes with the build caches
# warm. Needs the stack's ports free (run it when no other stack is up).
set -euo pipefail
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
work=$(mktemp -d /tmp/pgbroker-smoke.XXXXXX)
chmod 755 "$work" # mktemp makes it 0700; postgres must reach the clone's .stack
clone=$work/pgbroker
base=http://127.0.0.1:8080
H='X-Broker-API-Version: 2.17'
J='Content-Type: application/json'
ID=smoke-$RANDOM$RANDOM
run_pid=

say() { echo "smoke: $*"; }
fail() {
	echo "smoke: FAIL: $*" >&2
	if [[ -f $work/run.log ]]; then
		echo "--- last lines of make run ---" >&2
		tail -n 40 "$work/run.log" >&2
	fi
	exit 1
}

# stop_run sends Ctrl-C (SIGINT) to make run's process group, as a terminal
# would, and waits for it.
stop_run() {
	[[ -n $run_pid ]] || return 0
	kill -INT -- "-$run_pid" 2>/dev/null || true
	for _ in $(seq 1 120); do
		kill -0 "$run_pid" 2>/dev/null || break
		sleep 1
	done
	if kill -0 "$run_pid" 2>/dev/null; then
		kill -KILL -- "-$run_pid" 2>/dev/null || true
		run_pid=
		return 1
	fi
	wait "$run_pid" 2>/dev/null || true
	run_pid=
}

on_exit() {
	local rc=$?
	if [[ -n $run_pid ]]; then
		stop_run || true
		# a failed run may leave its stack up: take it down
		(cd "$clone" && bash scripts/stack.sh down >/dev/null 2>&1) || true
	fi
	# the clone's data and Nomad dirs hold files of other users; keep the log on failure
	if ((rc == 0)); then rm -rf "$work"; else say "kept $work"; fi
	exit "$rc"
}
trap on_exit EXIT

# A shallow CI checkout may refuse to be cloned: then the committed tree of
# HEAD, which is what a clone would hold.
if ! git clone -q "$repo" "$clone" 2>"$work/clone.err"; then
	say "git clone failed ($(head -1 "$work/clone.err")); using git archive of HEAD"
	rm -rf "$clone" && mkdir -p "$clone"
	git -C "$repo" archive HEAD | tar -x -C "$clone"
fi
[[ ! -e $clone/.stack ]] || fail "the clone already has .stack"
say "fresh clone of $(git -C "$repo" rev-parse --short HEAD) in $clone"

start=$SECONDS
(cd "$clone" && exec setsid make run) >"$work/run.log" 2>&1 &
run_pid=$!

# make run prints the credentials it generated; wait for the catalog to answer.
U=
for _ in $(seq 1 900); do
	kill -0 "$run_pid" 2>/dev/null || fail "make run exited early"
	if [[ -z $U && -s $clone/.stack/broker-credentials ]]; then
		# shellcheck disable=SC1091
		U=$(set -a && source "$clone/.stack/broker-credentials" && echo "$PGBROKER_USERNAME:$PGBROKER_PASSWORD")
	fi
	if [[ -n $U ]] && [[ $(curl -s -o /dev/null -w '%{http_code}' -u "$U" -H "$H" "$base/v2/catalog") == 200 ]]; then
		break
	fi
	sleep 1
done
[[ -n $U ]] || fail "make run wrote no .stack/broker-credentials"
say "broker answers the catalog $((SECONDS - start)) s after make run"

code=$(curl -s -o "$work/provision.json" -w '%{http_code}' -u "$U" -H "$H" -H "$J" -X PUT \
	"$base/v2/service_instances/$ID?accepts_incomplete=true" \
	-d '{"service_id":"postgresql","plan_id":"postgresql-starter-512","organization_guid":"org","space_guid":"space"}')
[[ $code == 202 ]] || fail "provision answered $code: $(cat "$work/provision.json")"

poll() { # poll WHAT: waits for the last operation to succeed (10 min)
	local state=
	for _ in $(seq 1 300); do
		state=$(curl -s -u "$U" -H "$H" "$base/v2/service_instances/$ID/last_operation" | jq -r .state)
		case $state in
		succeeded) return 0 ;;
		failed) fail "$1 failed" ;;
		esac
		sleep 2
	done
	fail "$1 still '$state' after 10 minutes"
}
poll provision
say "Starter provisioned $((SECONDS - start)) s after make run"

code=$(curl -s -o "$work/bind.json" -w '%{http_code}' -u "$U" -H "$H" -H "$J" -X PUT \
	"$base/v2/service_instances/$ID/service_bindings/app-1" \
	-d '{"service_id":"postgresql","plan_id":"postgresql-starter-512"}')
[[ $code == 201 ]] || fail "bind answered $code"
url=$(jq -r .credentials.DATABASE_URL "$work/bind.json")
[[ $url == postgres* ]] || fail "bind returned no DATABASE_URL"

# psql exactly as handed out: no CA file, no ~/.postgresql, no PG* settings.
mkdir -p "$work/home"
# SET ROLE NONE: a binding's login acts as the instance's owner role, and
# pg_stat_ssl shows a session's row to its session user only.
got=$(env -i PATH="$PATH" HOME="$work/home" psql "$url" -XAt -c "SET ROLE NONE" -c \
	"select ssl from pg_stat_ssl where pid = pg_backend_pid()" 2>&1) || fail "psql \"\$DATABASE_URL\": $got"
got=${got##*$'\n'} # the last line: SET prints nothing with -At, but be sure
[[ $got == t ]] || fail "psql connected without TLS (pg_stat_ssl.ssl = '$got')"
say "psql \"\$DATABASE_URL\" connected, encrypted"

curl -s -o /dev/null -u "$U" -H "$H" -X DELETE \
	"$base/v2/service_instances/$ID/service_bindings/app-1?service_id=postgresql&plan_id=postgresql-starter-512"
code=$(curl -s -o /dev/null -w '%{http_code}' -u "$U" -H "$H" -X DELETE \
	"$base/v2/service_instances/$ID?accepts_incomplete=true&service_id=postgresql&plan_id=postgresql-starter-512")
[[ $code == 202 ]] || fail "deprovision answered $code"
for _ in $(seq 1 150); do
	code=$(curl -s -o /dev/null -w '%{http_code}' -u "$U" -H "$H" "$base/v2/service_instances/$ID/last_operation")
	[[ $code == 410 ]] && break
	sleep 2
done
[[ $code == 410 ]] || fail "deprovision not finished after 5 minutes (last_operation $code)"

stop_run || fail "make run did not stop within 2 minutes of Ctrl-C"
say "Ctrl-C stopped make run; $((SECONDS - start)) s in all"

# Nothing of the clone's stack may be left: processes started from it or
# holding files in it, tmpfs mounts under it, or listeners on its ports.
left=()
for proc in /proc/[0-9]*; do
	pid=${proc#/proc/}
	[[ $pid == "$$" ]] && continue
	if tr '\0' ' ' 2>/dev/null <"$proc/cmdline" | grep -qF "$clone/"; then
		left+=("$pid $(tr '\0' ' ' 2>/dev/null <"$proc/cmdline" | cut -c1-120)")
		continue
	fi
	for path in "$proc/cwd" "$proc"/fd/*; do
		if [[ $(readlink "$path" 2>/dev/null) == "$clone"/* ]]; then
			left+=("$pid $(tr '\0' ' ' 2>/dev/null <"$proc/cmdline" | cut -c1-120)")
			break
		fi
	done
done
((${#left[@]} == 0)) || fail "processes of the stack left after Ctrl-C:$(printf '\n  %s' "${left[@]}")"
if findmnt -rn -o TARGET | grep -qF "$clone/"; then
	fail "mounts left under $clone: $(findmnt -rn -o TARGET | grep -F "$clone/" | head -5 | tr '\n' ' ')"
fi
if ss -ltn | awk '{print $4}' | grep -qE ':(4646|54329|2379|8080)$'; then
	fail "a stack port still listens: $(ss -ltnp | grep -E ':(4646|54329|2379|8080) ' | head -5)"
fi
say "PASS: nothing of the stack is left"
