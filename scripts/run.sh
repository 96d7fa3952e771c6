#!/usr/bin/env bash
# make run: the broker on 127.0.0.1:8080 against the local stack.
# Ctrl-C stops the broker and whatever part of the stack this call started.
set -euo pipefail
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$repo"
creds="$repo/.stack/broker-credentials"
mkdir -p "$repo/.stack"
if [[ ! -s $creds ]]; then
	# umask only in a subshell: everything the stack starts below inherits this
	# shell's umask, and Nomad's alloc dirs must stay readable by postgres.
	(
		umask 077
		printf 'PGBROKER_USERNAME=broker\nPGBROKER_PASSWORD=%s\n' "$(head -c 24 /dev/urandom | base64 | tr -dc 'A-Za-z0-9')" >"$creds"
	)
fi
# shellcheck disable=SC1090
set -a; source "$creds"; set +a
export PGBROKER_LISTEN=${PGBROKER_LISTEN:-127.0.0.1:8080}

cat <<MSG
pgbroker on http://$PGBROKER_LISTEN  (user $PGBROKER_USERNAME, password $PGBROKER_PASSWORD; kept in .stack/broker-credentials)
Try:
  curl -s -u $PGBROKER_USERNAME:$PGBROKER_PASSWORD -H 'X-Broker-API-Version: 2.17' http://$PGBROKER_LISTEN/v2/catalog
  curl -s -u $PGBROKER_USERNAME:$PGBROKER_PASSWORD -H 'X-Broker-API-Version: 2.17' -H 'Content-Type: application/json' -X PUT \\
    'http://$PGBROKER_LISTEN/v2/service_instances/my-db?accepts_incomplete=true' \\
    -d '{"service_id":"postgresql","plan_id":"postgresql-starter-512","organization_guid":"org","space_guid":"space"}'
MSG
exec bash scripts/with-stack.sh "$repo/bin/pgbroker"
