# The gateways of one instance: HAProxy in TCP mode in front of the instance's
# database nodes, on a static port that stays the same for the instance's life
# (the port of the DATABASE_URL handed to apps).
#
# The broker parses this file through the Nomad API with the variables below,
# then sets the job ID and name to pg-<instance>-gateways. The backend lists the
# Nomad service pg-<instance>-node; when nodes move, the config is re-rendered
# and HAProxy reloads (master-worker mode): old workers keep serving the
# connections they hold, new connections go to the new nodes. Starting with no
# registered node is fine: the backend is empty until one appears.
#
# patroni = true (Business): the nodes run under Patroni; a node is in the
# read-write backend only while its Patroni REST API answers OPTIONS /primary
# with 200 (the port comes from the node service's "patroni=<port>" tag), and
# sessions on a node marked down are shut, so apps reconnect to the new
# leader. read_only_port set: a second listener routes to the standbys that
# answer OPTIONS /replica (the read_only_uri of Business credentials).

variable "instance" {
  type        = string
  description = "Short, stable instance id (12 hex characters from the broker)."
  validation {
    condition     = regex_replace(var.instance, "^[a-z0-9]([a-z0-9-]{0,30}[a-z0-9])?$", "ok") == "ok"
    error_message = "The instance must be 1 to 32 lower-case letters, digits and inner dashes."
  }
}

variable "driver" {
  type        = string
  default     = "raw_exec"
  description = "Task driver profile: raw_exec (Debian binaries) or docker (images)."
  validation {
    condition     = contains(["raw_exec", "docker"], var.driver)
    error_message = "The driver must be raw_exec or docker."
  }
}

variable "datacenters" {
  type    = list(string)
  default = ["*"]
}

variable "gateway_count" {
  type        = number
  description = "Number of gateways, each on its own client."
}

variable "gateway_port" {
  type        = number
  description = "Static port the gateways listen on."
}

variable "max_connections" {
  type        = number
  description = "Client connections one gateway accepts at once."
}

variable "patroni" {
  type        = bool
  default     = false
  description = "Route to the node whose Patroni REST API says it is the leader (Business plans)."
}

variable "broker_ca" {
  type        = string
  default     = ""
  description = "With patroni: PEM of the broker's CA. The health checks verify each node's Patroni REST API certificate by it (and its name, pg-<instance>-node)."
  validation {
    condition     = regex_replace(var.broker_ca, "^[A-Za-z0-9+/=\\s-]*$", "") == ""
    error_message = "The broker_ca must hold PEM certificates only."
  }
}

variable "read_only_port" {
  type        = number
  default     = 0
  description = "With patroni: static port of the listener routed to standbys; 0 for none."
}

variable "gateway_cpu_mhz" {
  type        = number
  default     = 100
  description = "CPU of one gateway in MHz."
}

variable "gateway_memory_mib" {
  type        = number
  default     = 64
  description = "Memory of one gateway in MiB."
}

variable "host_network" {
  type        = string
  default     = "default"
  description = "Client host network the gateway port is reserved on."
}

variable "haproxy_bin" {
  type    = string
  default = "/usr/sbin/haproxy"
}

variable "haproxy_image" {
  type    = string
  default = "haproxy:2.6"
}

variable "node_id" {
  type        = string
  default     = ""
  description = "Nomad node id the gateway job is pinned to; empty: not pinned. A repair sets it (the gateway's former client), so credentials handed out before keep their host."
}

locals {
  docker = var.driver == "docker"
  # HAProxy loads haproxy.loaded.cfg: a copy of the rendered haproxy.cfg
  # made at start and by reload.sh just before each reload, so it is always
  # what the running HAProxy serves. The broker's gateway.Watcher compares
  # it with the node service: a template change whose reload Nomad never ran
  # (its change_script event was lost, as hashicorp/nomad#24140 describes:
  # seen here after a restore, the backend stayed empty) shows as a
  # difference, and the gateway is restarted. The master writes its pid to
  # haproxy.pid; reload.sh signals it.
  # Patroni's REST API speaks TLS only: a check verifies the node's
  # certificate by the broker's CA and the node service's name (the nodes
  # are reached by address).
  check_tls = var.broker_ca == "" ? "" : " check-ssl verify required ca-file {{ env \"NOMAD_TASK_DIR\" }}/broker-ca.pem verifyhost pg-${var.instance}-node"
  haproxy_args = ["-W", "-db", "-f", "${NOMAD_TASK_DIR}/haproxy.loaded.cfg", "-p", "${NOMAD_TASK_DIR}/haproxy.pid"]
  # load_config starts the task's shell: the rendered configuration becomes
  # the loaded one.
  load_config = "cp -f \"$NOMAD_TASK_DIR/haproxy.cfg\" \"$NOMAD_TASK_DIR/haproxy.loaded.cfg\";"
}

job "pg-gateways" {
  type        = "service"
  datacenters = var.datacenters

  dynamic "constraint" {
    for_each = var.node_id == "" ? [] : [var.node_id]
    content {
      attribute = "${node.unique.id}"
      value     = constraint.value
    }
  }

  group "gateway" {
    count = var.gateway_count

    constraint {
      distinct_hosts = true
    }

    network {
      port "pg" {
        static       = var.gateway_port
        host_network = var.host_network
      }
      dynamic "port" {
        for_each = var.patroni && var.read_only_port > 0 ? ["ro"] : []
        labels   = ["ro"]
        content {
          static       = var.read_only_port
          host_network = var.host_network
        }
      }
      # HAProxy's own monitor (GET /healthz answers while it runs), for operators.
      port "health" {
        host_network = var.host_network
      }
    }

    service {
      provider = "nomad"
      name     = "pg-${var.instance}-gateway"
      port     = "pg"

      # No Nomad check (issue 18: idle instances cost almost nothing). A
      # check a second on every gateway was most of an idle instance's CPU
      # (the client agent's HTTP request plus HAProxy answering it), and it
      # told nothing the task state does not: HAProxy exits when a frontend
      # cannot bind, and its monitor frontend answers whenever it runs.
      # Deployments use task_states below. (A TCP check is out in any case:
      # Nomad's checkTCP never closes its connection,
      # client/serviceregistration/checks/client.go, Nomad 1.11.3.)
    }

    # A gateway is healthy once HAProxy has run for 2 s: it binds its
    # frontends at start and exits if one cannot bind.
    update {
      max_parallel      = 1
      health_check      = "task_states"
      min_healthy_time  = "2s"
      healthy_deadline  = "3m"
      progress_deadline = "5m"
    }

    restart {
      attempts = 5
      interval = "2m"
      delay    = "1s"
      mode     = "delay"
      # A restart renders haproxy.cfg afresh, with new watches. The broker's
      # gateway.Watcher restarts a gateway whose configuration fell behind
      # the node service (a template watch can miss a change).
      render_templates = true
    }

    # sticky: a replacement goes back to the same client when it can, so the
    # address in the credentials stays valid.
    ephemeral_disk {
      size   = 64
      sticky = true
    }

    task "haproxy" {
      driver = var.driver
      # The docker image runs as its own haproxy user.
      user = local.docker ? "" : "haproxy"

      # raw_exec: Nomad collects no logs (logs.disabled: no logmon process,
      # whose 100 ms flush tickers cost an idle gateway more CPU than
      # HAProxy, issue 18); HAProxy's output goes to haproxy.stderr.0 in the
      # allocation's log directory, moved aside at start past 10 MB.
      dynamic "config" {
        for_each = local.docker ? [] : ["raw_exec"]
        content {
          command = "/bin/sh"
          # After the script, $0 is HAProxy and "$@" its arguments.
          args = concat(["-c", join(" ", [
            local.load_config,
            "log=\"$NOMAD_ALLOC_DIR/logs/haproxy.stderr.0\";",
            "if [ \"$(stat -c %s \"$log\" 2>/dev/null || echo 0)\" -gt 10485760 ]; then mv -f \"$log\" \"$log.1\"; fi;",
            "exec \"$0\" \"$@\" >>\"$log\" 2>&1",
          ]), var.haproxy_bin], local.haproxy_args)
        }
      }

      dynamic "config" {
        for_each = local.docker ? ["docker"] : []
        content {
          image        = var.haproxy_image
          network_mode = "host"
          entrypoint   = ["/bin/sh"]
          args         = concat(["-c", "${local.load_config} exec \"$0\" \"$@\"", "haproxy"], local.haproxy_args)
        }
      }

      # Both SIGINT and SIGTERM stop HAProxy at once; SIGUSR1 would wait for
      # sessions that may last hours.
      kill_signal  = "SIGTERM"
      kill_timeout = "10s"

      resources {
        cpu    = var.gateway_cpu_mhz
        memory = var.gateway_memory_mib
      }

      logs {
        disabled      = !local.docker
        max_files     = 3
        max_file_size = 10
      }

      # Reloads go through a script, not change_mode "signal": a SIGUSR2 that
      # reaches the master while it re-executes itself for the previous reload
      # is lost (seen when a node moved: deregistration and registration came
      # 100 ms apart), leaving the old backend loaded. Nomad runs change
      # scripts one at a time and this one returns once a worker forked after
      # its signal runs, signalling again until one does.
      template {
        destination = "local/reload.sh"
        perms       = "0755"
        change_mode = "noop"
        data        = <<-EOT
          #!/bin/sh
          # Rendered from gateways.nomad.hcl: checks the new configuration,
          # reloads HAProxy (master-worker: SIGUSR2 to the master) and waits
          # until the master has forked a new worker on it.
          set -eu
          haproxy='${local.docker ? "haproxy" : var.haproxy_bin}'
          cfg="$NOMAD_TASK_DIR/haproxy.cfg"
          next="$NOMAD_TASK_DIR/haproxy.next.cfg"
          loaded="$NOMAD_TASK_DIR/haproxy.loaded.cfg"
          served="$NOMAD_TASK_DIR/haproxy.served.cfg"
          pidfile="$NOMAD_TASK_DIR/haproxy.pid"

          # workers: the pids of the master's workers, once it wrote its pid file.
          workers() {
            [ -s "$pidfile" ] || return 0
            pid=$(cat "$pidfile")
            cat "/proc/$pid/task/$pid/children" 2>/dev/null || true
          }

          # new_worker: true once a worker runs that was not one of $before.
          # (Comparing the whole list is not enough: a former worker that
          # exits changes it too, and a reload whose signal was lost then
          # looked done: seen in CI, the backend stayed empty.)
          new_worker() {
            for w in $(workers); do
              case " $before " in
              *" $w "*) ;;
              *) return 0 ;;
              esac
            done
            return 1
          }

          # The copy HAProxy will load, checked first.
          cp -f "$cfg" "$next"
          "$haproxy" -c -q -f "$next"
          # A master still starting up has no worker yet and no signal handler.
          i=0
          until [ -n "$(workers)" ]; do
            i=$((i + 1))
            if [ "$i" -gt 200 ]; then
              echo "reload: HAProxy's master has no worker after 10 s" >&2
              exit 1
            fi
            sleep 0.05
          done
          master=$(cat "$pidfile")
          before=$(echo $(workers))
          cp -f "$loaded" "$served"
          mv -f "$next" "$loaded"
          # Up to 5 signals, 2 s apart: a signal the master lost to its
          # previous reload is sent again (a second reload on the same file
          # does no harm).
          for attempt in 1 2 3 4 5; do
            kill -USR2 "$master"
            i=0
            while [ "$i" -lt 40 ]; do
              if new_worker; then
                exit 0
              fi
              sleep 0.05
              i=$((i + 1))
            done
          done
          # Still the former configuration: say so in the loaded copy, which the
          # broker's gateway watcher compares with the node service (it then
          # restarts the task).
          mv -f "$served" "$loaded"
          echo "reload: HAProxy's master forked no worker after 5 signals" >&2
          exit 1
        EOT
      }

      dynamic "template" {
        for_each = var.patroni && var.broker_ca != "" ? ["ca"] : []
        content {
          destination = "local/broker-ca.pem"
          data        = var.broker_ca
        }
      }

      template {
        destination = "local/haproxy.cfg"
        change_mode = "script"
        change_script {
          command       = "/bin/sh"
          args          = ["-c", "exec \"$NOMAD_TASK_DIR/reload.sh\""]
          timeout       = "30s"
          fail_on_error = false
        }
        # Re-render and reload soon after the node service changes: the client
        # defaults wait 5s before re-rendering and up to 5s (splay) before reloading.
        splay = "0s"
        wait {
          min = "100ms"
          max = "1s"
        }
        data = <<-EOT
          # Rendered from gateways.nomad.hcl for the nodes of instance ${var.instance}.
          global
            log stdout format raw local0
            maxconn ${var.max_connections + 16}

          defaults
            mode tcp
            log global
            option tcplog
            option dontlognull
            # Only sessions that ended in error: the log file grows with
            # problems, not with traffic.
            option dontlog-normal
            option clitcpka
            option srvtcpka
            retries 3
            timeout connect 5s
            timeout queue 30s
            timeout client 8h
            timeout server 8h
            timeout client-fin 30s
            timeout server-fin 30s
            timeout check 2s

          frontend health
            mode http
            no log
            bind {{ env "NOMAD_IP_health" }}:{{ env "NOMAD_PORT_health" }}
            monitor-uri /healthz
            timeout http-request 5s

          frontend postgres
            bind {{ env "NOMAD_IP_pg" }}:{{ env "NOMAD_PORT_pg" }}
            maxconn ${var.max_connections}
            default_backend nodes

          backend nodes
            # The first node up takes all connections; sessions on a node
            # marked down are closed so clients reconnect through us.
            balance first
          %{ if var.patroni }
            # Only the leader answers 200 to OPTIONS /primary. Two failed
            # checks in a row take a node out (a switchover, a demotion:
            # the second comes 100 ms after the first), and the new leader
            # is in within 100 ms of its promotion. Not one: a check's TLS
            # handshake must end within timeout connect (250 ms, below),
            # and under load Patroni's sometimes did not (CI: the leader
            # flapped down and up, each time closing every session on it).
            default-server inter 250ms fastinter 100ms downinter 100ms rise 1 fall 2 on-marked-down shutdown-sessions
            option httpchk OPTIONS /primary
            # A node that stops (a switchover) refuses connections while it
            # is still marked up. HAProxy waits min(timeout connect, 1 s)
            # before each of its 3 retries: with the defaults' 5 s that held
            # a client 3 s on the old leader. Here a retry comes 250 ms
            # later on whichever node leads by then (the nodes are on the
            # private network: a connect takes well under 250 ms).
            timeout connect 250ms
            option redispatch 1
            http-check expect status 200
          {{- range nomadService "pg-${var.instance}-node" }}
            server {{ .AllocID }} {{ .Address }}:{{ .Port }} check{{ range .Tags }}{{ if . | regexMatch "^patroni=[0-9]+$" }} port {{ . | replaceAll "patroni=" "" }}${local.check_tls}{{ end }}{{ end }}
          {{- end }}
          %{ else }
            # One node, but the registry can briefly list two: the stopping
            # allocation and its replacement. A check marks the stopped one
            # down; each check forks a PostgreSQL backend, so it runs every
            # 30 s while the node is up (issue 18) and a failed connection
            # of a client marks the node down at once (observe layer4), to
            # be checked again every 250 ms until it answers.
            default-server inter 30s fastinter 250ms downinter 250ms rise 1 fall 2 observe layer4 error-limit 1 on-error mark-down on-marked-down shutdown-sessions
          {{- range nomadService "pg-${var.instance}-node" }}
            server {{ .AllocID }} {{ .Address }}:{{ .Port }} check
          {{- end }}
          %{ endif }
          %{ if var.patroni && var.read_only_port > 0 }

          frontend postgres-read-only
            bind {{ env "NOMAD_IP_ro" }}:{{ env "NOMAD_PORT_ro" }}
            maxconn ${var.max_connections}
            default_backend standbys

          backend standbys
            # Streaming standbys (OPTIONS /replica: 200), spread round robin.
            balance roundrobin
            option httpchk OPTIONS /replica
            http-check expect status 200
            default-server inter 1s fastinter 250ms downinter 250ms rise 1 fall 2 on-marked-down shutdown-sessions
          {{- range nomadService "pg-${var.instance}-node" }}
            server {{ .AllocID }} {{ .Address }}:{{ .Port }} check{{ range .Tags }}{{ if . | regexMatch "^patroni=[0-9]+$" }} port {{ . | replaceAll "patroni=" "" }}${local.check_tls}{{ end }}{{ end }}
          {{- end }}
          %{ endif }
        EOT
      }
    }
  }
}
