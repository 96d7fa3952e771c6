# Sourced by stack.sh: the parts of the local stack that make it a cluster —
# etcd (Patroni's DCS for Business instances) and extra Nomad client agents,
# each on its own loopback address, so that a count-2 group with
# distinct_hosts lands on two "hosts" as in production.
#
# Uses stack.sh's variables and helpers (stack_dir, nomad, nomad_dir,
# run_dir, log_dir, log, die, running, pid_alive, stop_pids).

etcd_port=${PGBROKER_ETCD_PORT:-2379}
etcd_dir=$stack_dir/etcd
# etcd serves clients over TLS only, with authentication on: the stack's own
# CA (made once, kept across restarts) signs the server certificate for
# 127.0.0.1, and the root user's password is generated once. Keys and the
# password are 0600. The peer URL stays plain HTTP on loopback: one member,
# no peer ever connects.
etcd_ca=$etcd_dir/ca.pem
etcd_ca_key=$etcd_dir/ca-key.pem
etcd_cert=$etcd_dir/server.pem
etcd_key=$etcd_dir/server-key.pem
etcd_password_file=$etcd_dir/root-password
etcd_url=https://127.0.0.1:$etcd_port
etcd_curl() { curl -fsS -m 5 --cacert "$etcd_ca" "$@"; }

# Extra Nomad clients: the dev agent is client 1 at 127.0.0.1; these are clients 2 and 3.
extra_clients=(127.0.0.2 127.0.0.3)

etcd_answers() {
	local health
	[[ -s $etcd_ca ]] || return 1
	health=$(etcd_curl "$etcd_url/health" 2>/dev/null) || return 1
	[[ $health == *'"health":"true"'* ]]
}

# etcd_pki makes the CA, the server certificate (IP SAN 127.0.0.1) and the
# root password once; later runs keep them.
etcd_pki() {
	# 0711: the broker, not always root, reads the CA; the keys and the password are 0600.
	install -d -m 0711 "$etcd_dir"
	if [[ ! -s $etcd_password_file ]]; then
		(umask 077 && od -An -N24 -tx1 /dev/urandom | tr -d ' \n' >"$etcd_password_file")
	fi
	[[ -s $etcd_ca && -s $etcd_cert && -s $etcd_key ]] && return
	log "etcd: making its CA and server certificate in $etcd_dir"
	local ext=$etcd_dir/server-ext.cnf
	(
		umask 077
		openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 3650 \
			-subj "/CN=pgbroker stack etcd CA" -keyout "$etcd_ca_key" -out "$etcd_ca" 2>/dev/null
		printf '%s\n' 'subjectAltName=IP:127.0.0.1' 'extendedKeyUsage=serverAuth' \
			'keyUsage=critical,digitalSignature' 'basicConstraints=critical,CA:FALSE' >"$ext"
		openssl req -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -subj "/CN=127.0.0.1" \
			-keyout "$etcd_key" -out "$etcd_dir/server.csr" 2>/dev/null
		openssl x509 -req -in "$etcd_dir/server.csr" -CA "$etcd_ca" -CAkey "$etcd_ca_key" -CAcreateserial \
			-days 3650 -extfile "$ext" -out "$etcd_cert" 2>/dev/null
	) || die "etcd: openssl failed to make the CA or server certificate in $etcd_dir"
	rm -f "$etcd_dir/server.csr" "$ext" "$etcd_dir/ca.srl"
	chmod 0644 "$etcd_ca" "$etcd_cert"
}

# etcd_auth turns authentication on with user root (password from
# $etcd_password_file), unless the root password already authenticates.
# A data directory from before TLS (plain HTTP, no auth) is converted here.
etcd_auth() {
	local body
	# On stdin, not in curl's arguments (which every local user can read).
	body=$(printf '{"name":"root","password":"%s"}' "$(<"$etcd_password_file")")
	if etcd_curl --data-binary @- "$etcd_url/v3/auth/authenticate" <<<"$body" >/dev/null 2>&1; then
		return
	fi
	log "etcd: turning authentication on (user root)"
	etcd_curl --data-binary @- "$etcd_url/v3/auth/user/add" <<<"$body" >/dev/null ||
		die "etcd: cannot add user root (authentication on already, with another password? run '$0 down --purge')"
	etcd_curl -d '{"user":"root","role":"root"}' "$etcd_url/v3/auth/user/grant" >/dev/null
	etcd_curl -d '{}' "$etcd_url/v3/auth/enable" >/dev/null
	etcd_curl --data-binary @- "$etcd_url/v3/auth/authenticate" <<<"$body" >/dev/null ||
		die "etcd: root does not authenticate after auth enable, see $log_dir/etcd.log"
}

etcd_up() {
	etcd_pki
	if pid_alive "$run_dir/etcd.pid" etcd && etcd_answers; then
		log "etcd: already running at $etcd_url"
		etcd_auth
		return
	fi
	if etcd_answers; then
		log "etcd: reusing the server already answering at $etcd_url"
		etcd_auth
		return
	fi
	log "etcd: starting at $etcd_url (log $log_dir/etcd.log)"
	# One member, loopback only. Patroni keeps one scope per instance under /pgbroker/.
	setsid etcd --name pgbroker --data-dir "$etcd_dir/data" \
		--listen-client-urls "$etcd_url" --advertise-client-urls "$etcd_url" \
		--cert-file "$etcd_cert" --key-file "$etcd_key" \
		--listen-peer-urls "http://127.0.0.1:$((etcd_port + 1))" \
		--initial-advertise-peer-urls "http://127.0.0.1:$((etcd_port + 1))" \
		--initial-cluster "pgbroker=http://127.0.0.1:$((etcd_port + 1))" \
		</dev/null >"$log_dir/etcd.log" 2>&1 &
	echo $! >"$run_dir/etcd.pid"
	local i
	for ((i = 0; i < 100; i++)); do
		if etcd_answers; then
			etcd_auth
			return 0
		fi
		pid_alive "$run_dir/etcd.pid" etcd || die "etcd: exited, see $log_dir/etcd.log"
		sleep 0.2
	done
	die "etcd: not healthy after 20s, see $log_dir/etcd.log"
}

etcd_down() {
	if pid_alive "$run_dir/etcd.pid" etcd; then
		log "etcd: stopping (pid $(<"$run_dir/etcd.pid"))"
		stop_pids TERM "$(<"$run_dir/etcd.pid")"
	fi
	rm -f "$run_dir/etcd.pid"
}

# client_dir ADDRESS: the agent config and data dir of the client at ADDRESS.
client_dir() { echo "$nomad_dir/client-${1##*.}"; }

clients_up() {
	local address dir
	for address in "${extra_clients[@]}"; do
		dir=$(client_dir "$address")
		if pid_alive "$run_dir/client-${address##*.}.pid" nomad; then
			log "nomad: client $address already running"
			continue
		fi
		if curl -fsS -m 2 "http://$address:4646/v1/agent/self" >/dev/null 2>&1; then
			log "nomad: reusing the client agent already answering at $address"
			continue
		fi
		# Nomad matches a host network's cidr against interface addresses.
		# (Not `ip … | grep -q`: with pipefail, grep's early exit fails the pipe.)
		local lo_addrs
		lo_addrs=$(ip -o addr show dev lo)
		[[ $lo_addrs == *"inet $address/32"* ]] || ip addr add "$address/32" dev lo
		install -d -m 0711 "$dir"
		fresh_client_data "$dir/data"
		cat >"$dir/agent.hcl" <<-EOF
			name      = "client-${address##*.}"
			data_dir  = "$dir/data"
			bind_addr = "$address"
			advertise {
			  http = "$address"
			  rpc  = "$address"
			  serf = "$address"
			}
			client {
			  enabled = true
			  servers = ["127.0.0.1:4647"]
			  network_interface = "lo"
			  options = {
			    "fingerprint.denylist" = "env_aws,env_gce,env_azure,env_digitalocean"
			  }
			  host_network "private" {
			    cidr = "$address/32"
			  }
			}
			plugin "raw_exec" {
			  config {
			    enabled = true
			  }
			}
			$(nomad_telemetry)
		EOF
		log "nomad: starting client agent at $address (log $log_dir/client-${address##*.}.log)"
		setsid "$nomad" agent -config="$dir/agent.hcl" </dev/null >"$log_dir/client-${address##*.}.log" 2>&1 &
		echo $! >"$run_dir/client-${address##*.}.pid"
	done
	wait_nomad_clients $((${#extra_clients[@]} + 1))
}

# fresh_client_data DIR empties a client agent's data dir but keeps its
# identity (client/client-id, client/secret-id): its node ID stays the same
# across stack restarts, as a production client's does, so the node job of
# an instance, pinned to the client holding its data, places again. The
# allocations the client recorded are dropped: the dev server that made them
# is gone, and restoring them could start a second postgres on a data dir.
fresh_client_data() {
	local data=$1 keep file
	keep=$(mktemp -d)
	for file in client-id secret-id; do
		[[ ! -s $data/client/$file ]] || cp -p "$data/client/$file" "$keep/"
	done
	rm -rf "$data"
	install -d -m 0711 "$data"
	install -d -m 0700 "$data/client"
	for file in client-id secret-id; do
		[[ ! -s $keep/$file ]] || cp -p "$keep/$file" "$data/client/"
	done
	rm -rf "$keep"
}

# wait_nomad_clients N waits until N client nodes are ready, eligible and run raw_exec.
wait_nomad_clients() {
	local want=$1 format='{{range .}}{{.Status}}/{{.SchedulingEligibility}}/{{with index .Drivers "raw_exec"}}{{.Healthy}}{{end}} {{end}}'
	local nodes="" ready i
	for ((i = 0; i < 300; i++)); do
		nodes=$("$nomad" node status -address="$nomad_addr" -t "$format" 2>/dev/null) || true
		ready=$(grep -o 'ready/eligible/true' <<<"$nodes" | wc -l)
		if ((ready >= want)); then
			log "nomad: $ready client nodes ready"
			return 0
		fi
		sleep 0.2
	done
	die "nomad: fewer than $want ready client nodes after 60s (nodes: ${nodes:-none}), see $log_dir/client-*.log"
}

clients_down() {
	local address pidfile
	for address in "${extra_clients[@]}"; do
		pidfile=$run_dir/client-${address##*.}.pid
		if pid_alive "$pidfile" nomad; then
			log "nomad: stopping client agent at $address (pid $(<"$pidfile"))"
			stop_pids INT "$(<"$pidfile")"
		fi
		rm -f "$pidfile"
	done
}

cluster_status() {
	local up=0 address ready
	if etcd_answers; then
		echo "etcd: running at $etcd_url (TLS, authentication on)"
	else
		echo "etcd: not answering at $etcd_url"
		up=1
	fi
	for address in "${extra_clients[@]}"; do
		if pid_alive "$run_dir/client-${address##*.}.pid" nomad; then
			echo "nomad: client agent at $address running (pid $(<"$run_dir/client-${address##*.}.pid"))"
		elif curl -fsS -m 2 "http://$address:4646/v1/agent/self" >/dev/null 2>&1; then
			echo "nomad: client agent at $address running (not started by this stack)"
		else
			echo "nomad: client agent at $address not running"
			up=1
		fi
	done
	return "$up"
}
