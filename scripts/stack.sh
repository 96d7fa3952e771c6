#!/usr/bin/env bash
# The local stack for dev, tests and CI: the broker's state PostgreSQL, a Nomad
# dev agent (server and client 1) with two more client agents, etcd, and the
# data root the node jobs write to. Everything lives in
# ${PGBROKER_STACK_DIR:-<repo>/.stack}.
#
#   stack.sh up            start what is not running (idempotent)
#   stack.sh env           print export lines for DATABASE_URL, NOMAD_ADDR, PGBROKER_DATA_ROOT,
#                          PGBROKER_ETCD_ENDPOINTS, _CA_FILE, _USERNAME, _PASSWORD,
#                          PGBROKER_HOST_NETWORK, PGBROKER_NODE_NETWORKS, PGBROKER_SECRETS_KEY_FILE,
#                          PGBROKER_POSTGRES_VERSIONS, PATH
#   stack.sh status        one line per component; exits 1 unless all are up
#   stack.sh down [--purge] stop what up started; --purge also deletes all state but bin/
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
stack_dir=${PGBROKER_STACK_DIR:-$repo/.stack}
state_port=${PGBROKER_STATE_PORT:-54329}
pg_bin=/usr/lib/postgresql/15/bin
nomad_addr=http://127.0.0.1:4646

nomad=$stack_dir/bin/nomad
run_dir=$stack_dir/run        # pid files of what up started
log_dir=$stack_dir/logs
state_dir=$stack_dir/state    # the state PostgreSQL cluster
state_password_file=$stack_dir/state-password
secrets_key_file=$stack_dir/secrets-key # PGBROKER_SECRETS_KEY_FILE: made once, kept until --purge (with the state DB it opens)
nomad_dir=$stack_dir/nomad    # agent config and data dir
nomad_data=$nomad_dir/data
data_root=$stack_dir/data     # PGBROKER_DATA_ROOT: instance data, owned by postgres
backup_dir=$data_root-backups # the broker's default PGBROKER_BACKUP_DIR: dumps, beside the data root
backup_user=pgbroker-backup   # the broker's default PGBROKER_BACKUP_USER: runs dump and restore jobs

log() { echo "stack: $*"; }
die() {
	echo "stack: $*" >&2
	exit 1
}

# shellcheck source=stack-cluster.sh
source "$repo/scripts/stack-cluster.sh"

as_postgres() { runuser -u postgres -- "$@"; }

# running PID: the process exists and is not a zombie.
running() {
	local stat
	{ read -r stat <"/proc/$1/stat"; } 2>/dev/null || return 1
	stat=${stat##*) }
	[[ ${stat%% *} != Z ]]
}

# cmdline PID: the process's arguments, space separated; nothing once it is gone.
cmdline() { tr '\0' ' ' <"/proc/$1/cmdline"; } 2>/dev/null

# pid_alive FILE NAME: the pid recorded in FILE runs a program named NAME.
pid_alive() {
	local file=$1 name=$2 pid
	[[ -f $file ]] || return 1
	pid=$(<"$file")
	running "$pid" && [[ $(<"/proc/$pid/comm") == "$name" ]]
}

# nomad_telemetry: every agent's telemetry block. Each task's executor
# measures its process tree every collection_interval (Nomad's default 1 s);
# with two tasks per idle instance that scan was most of an idle instance's
# CPU (issue 18). The broker does not read these figures.
nomad_telemetry() {
	printf 'telemetry {\n  collection_interval = "%s"\n}\n' "${PGBROKER_NOMAD_STATS_INTERVAL:-15s}"
}

nomad_answers() { "$nomad" agent-info -address="$nomad_addr" >/dev/null 2>&1; }

state_running() { as_postgres "$pg_bin/pg_ctl" status -D "$state_dir" >/dev/null 2>&1; }

# --- up ---------------------------------------------------------------------

make_dirs() {
	# 0711: tasks and the state cluster run as postgres and must traverse these.
	install -d -m 0711 "$stack_dir" "$nomad_dir" "$nomad_data" "$log_dir"
	install -d -m 0700 "$run_dir"
	if ! as_postgres test -x "$stack_dir"; then
		die "user postgres cannot reach $stack_dir: make its parents traversable (chmod o+x) or set PGBROKER_STACK_DIR"
	fi
}

# secrets_key_up: the key sealing the state DB's copies of secrets, made
# once, readable by the user who ran the stack (the broker runs as them).
secrets_key_up() {
	if [[ ! -s $secrets_key_file ]]; then
		(umask 077 && head -c32 /dev/urandom | base64 >"$secrets_key_file.new" && mv "$secrets_key_file.new" "$secrets_key_file")
		log "secrets key: made $secrets_key_file"
	fi
	chown "${SUDO_UID:-0}:${SUDO_GID:-0}" "$secrets_key_file"
	chmod 0600 "$secrets_key_file"
}

state_up() {
	if [[ ! -s $state_password_file ]]; then
		(umask 077 && od -An -N24 -tx1 /dev/urandom | tr -d ' \n' >"$state_password_file")
	fi
	if [[ ! -f $state_dir/PG_VERSION ]]; then
		log "state-db: initdb $state_dir"
		# initdb into a sibling, then rename: a crash never leaves a half cluster in place.
		rm -rf "$state_dir.initdb"
		install -d -m 0700 -o postgres -g postgres "$state_dir.initdb"
		as_postgres "$pg_bin/initdb" -D "$state_dir.initdb" --auth-local=peer --auth-host=scram-sha-256 \
			--encoding=UTF8 --locale=C.UTF-8 --no-sync >"$log_dir/state-initdb.log"
		cat >>"$state_dir.initdb/postgresql.conf" <<-EOF
			listen_addresses = '127.0.0.1'
			port = $state_port
			unix_socket_directories = '$state_dir'
			password_encryption = 'scram-sha-256'
		EOF
		mv "$state_dir.initdb" "$state_dir"
	fi
	if state_running; then
		log "state-db: already running on 127.0.0.1:$state_port"
	else
		log "state-db: starting on 127.0.0.1:$state_port (log $log_dir/state.log)"
		[[ -e $log_dir/state.log ]] || install -m 0640 -o postgres /dev/null "$log_dir/state.log"
		as_postgres "$pg_bin/pg_ctl" start -D "$state_dir" -l "$log_dir/state.log" -w -s -o "-p $state_port" ||
			die "state-db: did not start, see $log_dir/state.log"
		head -n1 "$state_dir/postmaster.pid" >"$run_dir/state-db.pid"
	fi
	# Idempotent role and database; the password always matches the file.
	as_postgres "$pg_bin/psql" -h "$state_dir" -p "$state_port" -d postgres -qAt -v ON_ERROR_STOP=1 >/dev/null <<-EOF
		SELECT 'CREATE ROLE pgbroker LOGIN CREATEDB'
		  WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'pgbroker') \gexec
		ALTER ROLE pgbroker PASSWORD '$(<"$state_password_file")';
		SELECT 'CREATE DATABASE pgbroker OWNER pgbroker'
		  WHERE NOT EXISTS (SELECT FROM pg_database WHERE datname = 'pgbroker') \gexec
	EOF
}

nomad_up() {
	[[ -x $nomad ]] || die "nomad: $nomad missing: run scripts/install-deps.sh"
	if pid_alive "$run_dir/nomad.pid" nomad; then
		log "nomad: already running at $nomad_addr (pid $(<"$run_dir/nomad.pid"))"
	elif nomad_answers; then
		log "nomad: reusing the agent already answering at $nomad_addr"
	else
		cat >"$nomad_dir/agent.hcl" <<-EOF
			client {
			  # The cloud fingerprinters probe metadata services; env_aws fails the agent off-cloud.
			  options = {
			    "fingerprint.denylist" = "env_aws,env_gce,env_azure,env_digitalocean"
			  }
			  host_network "private" {
			    cidr = "127.0.0.1/32"
			  }
			  # A dev agent never persists its node ID and, by default, draws a new one
			  # at every start: a repair pinned to the client holding an instance's data
			  # could then never place. Derived from the machine's id, it stays the same
			  # across restarts, as a production client's does (kept in its data dir).
			  no_host_uuid = false
			}
			plugin "raw_exec" {
			  config {
			    enabled = true
			  }
			}
			$(nomad_telemetry)
		EOF
		# A dev agent keeps its state in memory: what an earlier one left is
		# garbage, and so are client agents registered with it.
		clients_down
		stop_leftover_tasks
		find "$nomad_data" -mindepth 1 -delete
		log "nomad: starting dev agent at $nomad_addr (log $log_dir/nomad.log)"
		setsid "$nomad" agent -dev -bind=127.0.0.1 -data-dir="$nomad_data" -config="$nomad_dir/agent.hcl" \
			</dev/null >"$log_dir/nomad.log" 2>&1 &
		echo $! >"$run_dir/nomad.pid"
	fi
	wait_nomad_node
}

# wait_nomad_node waits until a client node is ready, eligible and runs raw_exec.
wait_nomad_node() {
	local format='{{range .}}{{.Status}}/{{.SchedulingEligibility}}/{{with index .Drivers "raw_exec"}}{{.Healthy}}{{end}} {{end}}'
	local nodes="" i
	for ((i = 0; i < 300; i++)); do
		nodes=$("$nomad" node status -address="$nomad_addr" -t "$format" 2>/dev/null) || true
		if [[ $nodes == *ready/eligible/true* ]]; then
			log "nomad: node ready"
			return 0
		fi
		if [[ -f $run_dir/nomad.pid ]] && ! pid_alive "$run_dir/nomad.pid" nomad; then
			die "nomad: agent exited, see $log_dir/nomad.log"
		fi
		sleep 0.2
	done
	die "nomad: no ready, eligible node with raw_exec after 60s (nodes: ${nodes:-none}), see $log_dir/nomad.log"
}

data_root_up() {
	install -d -m 0700 -o postgres -g postgres "$data_root"
	log "data-root: $data_root"
	# The dump and restore jobs' user (the broker's PGBROKER_BACKUP_USER
	# default): unprivileged, owns the backup directory and nothing else.
	if ! id -u "$backup_user" >/dev/null 2>&1; then
		useradd --system --user-group --no-create-home --home-dir /nonexistent --shell /usr/sbin/nologin "$backup_user"
		log "backup-dir: created user $backup_user"
	fi
	# Outside the data root and closed to postgres: nobody but its owner
	# (and root, the broker here) can plant a link that a dump job or the
	# broker would follow.
	install -d -m 0700 -o "$backup_user" -g "$backup_user" "$backup_dir"
	log "backup-dir: $backup_dir (owner $backup_user)"
}

# --- down -------------------------------------------------------------------

# task_pids prints the processes the dev agent launched and left behind:
# raw_exec tasks run in their alloc dir (postgres in its data dir under the
# data root) or were started with paths into it; executors and log collectors
# hold files in it open.
task_pids() {
	local proc pid path
	for proc in /proc/[0-9]*; do
		pid=${proc#/proc/}
		running "$pid" || continue
		for path in "$proc/cwd" "$proc"/fd/*; do
			path=$(readlink "$path" 2>/dev/null) || continue
			if [[ $path == "$nomad_data"/* || $path == "$nomad_dir"/client-*/data/* || $path == "$data_root"/* ]]; then
				echo "$pid"
				continue 2
			fi
		done
		if cmdline "$pid" | grep -qE "^[^ ]* .*($nomad_data/|$nomad_dir/client-[0-9]+/data/)"; then
			echo "$pid"
		fi
	done
}

# stop_pids SIGNAL PID...: sends SIGNAL, or SIGTERM to Nomad's executor and
# log collector plugins (they ignore SIGINT), waits up to 10 s, then kills
# what is left.
stop_pids() {
	local signal=$1 pid i left
	shift
	for pid in "$@"; do
		if cmdline "$pid" | grep -qE '^[^ ]*nomad[^ ]* (executor|logmon)'; then
			kill -TERM "$pid" 2>/dev/null || true
		else
			kill "-$signal" "$pid" 2>/dev/null || true
		fi
	done
	for ((i = 0; i < 50; i++)); do
		left=0
		for pid in "$@"; do
			if running "$pid"; then left=1; fi
		done
		((left)) || return 0
		sleep 0.2
	done
	kill -KILL "$@" 2>/dev/null || true
}

nomad_down() {
	clients_down
	if pid_alive "$run_dir/nomad.pid" nomad; then
		log "nomad: stopping agent (pid $(<"$run_dir/nomad.pid"))"
		stop_pids INT "$(<"$run_dir/nomad.pid")"
	fi
	rm -f "$run_dir/nomad.pid"
	stop_leftover_tasks
}

# stop_leftover_tasks stops the processes a dead agent's tasks left running
# (stopping an agent does not stop raw_exec tasks) and unmounts their tmpfs
# dirs. SIGINT is a fast shutdown for postgres and haproxy alike.
stop_leftover_tasks() {
	local pids
	mapfile -t pids < <(task_pids)
	if ((${#pids[@]} > 0)); then
		log "nomad: stopping ${#pids[@]} task processes left by the agent"
		stop_pids INT "${pids[@]}"
	fi
	unmount_task_dirs
}

# unmount_task_dirs unmounts the tmpfs secrets/ and private/ dirs Nomad mounts per task.
unmount_task_dirs() {
	local mounts target
	mapfile -t mounts < <(findmnt -rn -o TARGET | grep -E "^($nomad_data|$nomad_dir/client-[0-9]+/data)/" | sort -r)
	for target in "${mounts[@]}"; do
		umount "$target" 2>/dev/null || umount -l "$target"
	done
	((${#mounts[@]} == 0)) || log "nomad: unmounted ${#mounts[@]} task dirs"
}

state_down() {
	if pid_alive "$run_dir/state-db.pid" postgres && state_running; then
		log "state-db: stopping"
		as_postgres "$pg_bin/pg_ctl" stop -D "$state_dir" -m fast -w -s
	fi
	rm -f "$run_dir/state-db.pid"
}

purge() {
	if findmnt -rn -o TARGET | grep -qF "$stack_dir/"; then
		die "purge: something is still mounted under $stack_dir; not deleting"
	fi
	log "purge: deleting $stack_dir except bin/"
	find "$stack_dir" -mindepth 1 -maxdepth 1 ! -name bin -exec rm -rf {} +
}

# --- env, status ------------------------------------------------------------

print_env() {
	[[ -s $state_password_file ]] || die "no state password yet: run '$0 up' first"
	printf "export DATABASE_URL='postgres://pgbroker:%s@127.0.0.1:%s/pgbroker?sslmode=disable'\n" \
		"$(<"$state_password_file")" "$state_port"
	printf "export NOMAD_ADDR='%s'\n" "$nomad_addr"
	[[ -s $secrets_key_file ]] || die "no secrets key yet: run '$0 up' first"
	printf "export PGBROKER_SECRETS_KEY_FILE='%s'\n" "$secrets_key_file"
	printf "export PGBROKER_DATA_ROOT='%s'\n" "$data_root"
	printf "export PGBROKER_ETCD_ENDPOINTS='127.0.0.1:%s'\n" "$etcd_port"
	# etcd speaks TLS only (the stack's CA) and wants a user: the broker is root.
	printf "export PGBROKER_ETCD_CA_FILE='%s'\n" "$etcd_ca"
	printf "export PGBROKER_ETCD_USERNAME=root\n"
	printf "export PGBROKER_ETCD_PASSWORD='%s'\n" "$(<"$etcd_password_file")"
	# Each client's ports bind to its own loopback address.
	printf "export PGBROKER_HOST_NETWORK=private\n"
	# The clients' loopback addresses: replication is admitted from these only.
	printf "export PGBROKER_NODE_NETWORKS=127.0.0.0/8\n"
	# The versions offered: Debian's 15.18 (first: the default major is 15),
	# 15.20 once scripts/build-postgres.sh has unpacked it, and 18.6 (a major
	# upgrade's target only) once scripts/build-postgres18.sh has built it.
	local versions="15.18=/usr/lib/postgresql/15/bin"
	local pg1520=$stack_dir/bin/postgresql-15.20-0+deb12u1/usr/lib/postgresql/15/bin
	if [[ -x $pg1520/postgres ]]; then
		versions+=",15.20=$pg1520"
	fi
	local pg186=$stack_dir/bin/postgresql-18.6/bin
	if [[ -x $pg186/postgres ]]; then
		versions+=",18.6=$pg186"
	fi
	printf "export PGBROKER_POSTGRES_VERSIONS='%s'\n" "$versions"
	printf "export PATH='%s':\"\$PATH\"\n" "$stack_dir/bin"
}

status() {
	local owner up=0
	if state_running; then
		echo "state-db: running on 127.0.0.1:$state_port ($state_dir)"
	else
		echo "state-db: stopped ($state_dir)"
		up=1
	fi
	if ! nomad_answers; then
		echo "nomad: not answering at $nomad_addr"
		up=1
	elif pid_alive "$run_dir/nomad.pid" nomad; then
		echo "nomad: running at $nomad_addr (pid $(<"$run_dir/nomad.pid"), started by this stack)"
	else
		echo "nomad: running at $nomad_addr (not started by this stack)"
	fi
	if [[ -d $data_root ]]; then
		owner=$(stat -c '%U %a' "$data_root")
		echo "data-root: $data_root ($owner)"
	else
		echo "data-root: missing ($data_root)"
		up=1
	fi
	if [[ -d $backup_dir ]]; then
		echo "backup-dir: $backup_dir ($(stat -c '%U %a' "$backup_dir"))"
	else
		echo "backup-dir: missing ($backup_dir)"
		up=1
	fi
	cluster_status || up=1
	return "$up"
}

# Gateway ports (`make run`: 35000-35999; acceptance tests: 36000-37999) lie
# inside Linux's ephemeral range (32768-60999). A client socket that happens
# to take one as its source port (the broker's own connections, HAProxy's to
# the nodes, Nomad's checks) makes the gateway's static bind fail with
# "Address already in use" and its task restart until the port is free.
# Reserving the range keeps the kernel from handing those ports out; binding
# them explicitly still works. Idempotent; existing reservations are kept.
reserve_gateway_ports() {
	local file=/proc/sys/net/ipv4/ip_local_reserved_ports want=35000-37999 have
	have=$(<"$file")
	if [[ ",$have," == *",$want,"* ]]; then return; fi
	echo "${have:+$have,}$want" >"$file"
	log "reserved ports $want from the kernel's ephemeral range (gateway ports)"
}

main() {
	local command=${1:-}
	if [[ $(id -u) -ne 0 ]]; then
		# Tasks run as postgres, the agent mounts tmpfs: the stack needs root.
		exec sudo --preserve-env=PGBROKER_STACK_DIR,PGBROKER_STATE_PORT "$0" "$@"
	fi
	case $command in
	up)
		make_dirs
		reserve_gateway_ports
		secrets_key_up
		state_up
		etcd_up
		data_root_up
		nomad_up
		clients_up
		;;
	down)
		nomad_down
		etcd_down
		state_down
		if [[ ${2:-} == --purge ]]; then purge; fi
		;;
	env) print_env ;;
	status) status ;;
	*) die "usage: $0 up|down [--purge]|env|status" ;;
	esac
}

main "$@"
