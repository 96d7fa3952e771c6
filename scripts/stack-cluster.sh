# Sourced by stack.sh: the parts of the local stack that make it a cluster —
# etcd (Patroni's DCS for Business instances) and extra Nomad client agents,
# each on its own loopback address, so that a count-2 group with
# distinct_hosts lands on two "hosts" as in production.
#
# Uses stack.sh's variables and helpers (stack_dir, nomad, nomad_dir,
# run_dir, log_dir, log, die, running, pid_alive, stop_pids).

etcd_port=${PGBROKER_ETCD_PORT:-2379}
etcd_dir=$stack_dir/etcd
# The dev agent is client 1 at 127.0.0.1; these are clients 2 and 3.
extra_clients=(127.0.0.2 127.0.0.3)

etcd_answers() {
	local health
	health=$(curl -fsS -m 2 "http://127.0.0.1:$etcd_port/health" 2>/dev/null) || return 1
	[[ $health == *'"health":"true"'* ]]
}

etcd_up() {
	if pid_alive "$run_dir/etcd.pid" etcd && etcd_answers; then
		log "etcd: already running on 127.0.0.1:$etcd_port"
		return
	fi
	if etcd_answers; then
		log "etcd: reusing the server already answering on 127.0.0.1:$etcd_port"
		return
	fi
	install -d -m 0700 "$etcd_dir"
	log "etcd: starting on 127.0.0.1:$etcd_port (log $log_dir/etcd.log)"
	# One member, loopback only. Patroni keeps one scope per instance under /pgbroker/.
	setsid etcd --name pgbroker --data-dir "$etcd_dir/data" \
		--listen-client-urls "http://127.0.0.1:$etcd_port" --advertise-client-urls "http://127.0.0.1:$etcd_port" \
		--listen-peer-urls "http://127.0.0.1:$((etcd_port + 1))" \
		--initial-advertise-peer-urls "http://127.0.0.1:$((etcd_port + 1))" \
		--initial-cluster "pgbroker=http://127.0.0.1:$((etcd_port + 1))" \
		</dev/null >"$log_dir/etcd.log" 2>&1 &
	echo $! >"$run_dir/etcd.pid"
	local i
	for ((i = 0; i < 100; i++)); do
		etcd_answers && return 0
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
		rm -rf "$dir/data"
		install -d -m 0711 "$dir" "$dir/data"
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
		echo "etcd: running on 127.0.0.1:$etcd_port"
	else
		echo "etcd: not answering on 127.0.0.1:$etcd_port"
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
