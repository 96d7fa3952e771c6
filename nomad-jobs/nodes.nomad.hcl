# The database nodes of one instance: one PostgreSQL per allocation.
#
# The broker parses this file through the Nomad API with the variables below,
# then sets the job ID and name to pg-<instance>-nodes: nothing here depends on
# the label. Secrets come only from the Nomad Variable nomad/jobs/<job ID>
# (items admin_password, replication_password), which must exist before the
# job runs; tasks wait for it.
#
# One task group per node, node-<index> (node_count of them). Data lives on
# the client at <data_root>/<instance>/node-<index>, not in the allocation, so
# it survives restarts, replacements and plan changes (the same group reuses
# the same directory). cleanup.nomad.hcl deletes it.
#
# Profiles: driver = "raw_exec" runs Debian's binaries as user postgres;
# driver = "docker" runs var.postgres_image as its user postgres (uid 999) on
# the host network and mounts data_root, so clients need docker.volumes.enabled
# and a data_root owned by uid 999.
#
# Data stays on the client that made it: a node placed on another client starts
# empty there. Pin single-node instances with node_id once placed, and each
# node of a cluster with node_clients when it must start on its own data
# again. Once the Variable says cluster_made, a single node's start script
# refuses to initdb: no cluster then is data elsewhere or lost, not new.

variable "instance" {
  type        = string
  description = "Short, stable instance id (12 hex characters from the broker); names the service and the data directory."
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

variable "node_count" {
  type        = number
  description = "Number of PostgreSQL nodes."
}

variable "memory_mib" {
  type        = number
  description = "Memory of one node in MiB; shared_buffers is a quarter of it."
}

variable "cpu_mhz" {
  type        = number
  description = "CPU of one node in MHz."
}

variable "max_connections" {
  type        = number
  description = "PostgreSQL max_connections."
}

variable "autovacuum_naptime_s" {
  type        = number
  default     = 60
  description = "PostgreSQL autovacuum_naptime in seconds: each database gets an autovacuum worker this often, busy or not."
}

variable "data_root" {
  type        = string
  description = "Absolute host directory present on every client and owned by user postgres."
  validation {
    condition     = substr(var.data_root, 0, 1) == "/" && var.data_root != "/" && regex_replace(var.data_root, "/\\.\\.?(/|$)", "") == var.data_root
    error_message = "The data_root must be an absolute path without . or .. segments."
  }
}

variable "node_id" {
  type        = string
  default     = ""
  description = "When set, the Nomad client node ID every allocation must be placed on."
}

variable "node_clients" {
  type        = list(string)
  default     = []
  description = "Plans with standbys: the Nomad client node ID each node's task group (node-<index>, by index) must be placed on, where its data directory is; empty or an empty entry leaves that node to the scheduler."
}

variable "host_network" {
  type        = string
  default     = "default"
  description = "Client host network the node port is allocated on."
}

variable "shared_preload_libraries" {
  type        = list(string)
  default     = []
  description = "Libraries PostgreSQL loads at start (shared_preload_libraries), e.g. pg_stat_statements; a change restarts the node."
  validation {
    condition     = length([for l in var.shared_preload_libraries : l if regex_replace(l, "^[a-z0-9_]{1,63}$", "ok") != "ok"]) == 0
    error_message = "Each shared_preload_libraries entry must be 1 to 63 lower-case letters, digits and underscores."
  }
}

# Business plans: patroni = true runs each node under Patroni (leader election
# in etcd at etcd_hosts, one scope pg-<instance> per instance, synchronous
# replication). Patroni bootstraps the first node (initdb), clones the others
# from the leader (pg_basebackup), adopts a data directory that exists (a
# Starter instance moving to Business keeps its node 0), and rewinds a former
# leader (pg_rewind). Its REST API (port "api", tagged on the node service as
# patroni=<port>) is what the gateways check.
variable "patroni" {
  type        = bool
  default     = false
  description = "Run the nodes under Patroni (plans with standbys)."
}

variable "etcd_hosts" {
  type        = list(string)
  default     = []
  description = "With patroni: host:port of each etcd member."
  validation {
    condition     = length([for h in var.etcd_hosts : h if regex_replace(h, "^[A-Za-z0-9.-]+:[0-9]{1,5}$", "ok") != "ok"]) == 0
    error_message = "Each etcd_hosts entry must be host:port."
  }
}

# Patroni reaches etcd over TLS only, verifying it against etcd_ca, and logs
# in as etcd user pg-<instance> (password: item etcd_password of the
# Variable, made by the broker), whose role reads and writes the keys under
# /pgbroker/pg-<instance>/ and nothing else.
variable "etcd_ca" {
  type        = string
  default     = ""
  description = "With patroni: PEM certificates etcd's server certificate chains to, rendered into local/etcd-ca.pem; empty: the system's CAs."
  validation {
    condition     = regex_replace(var.etcd_ca, "^[A-Za-z0-9+/=\\s-]*$", "") == ""
    error_message = "The etcd_ca must hold PEM certificates only."
  }
}

variable "patroni_ttl" {
  type        = number
  default     = 7
  description = "Patroni's ttl in seconds (PGBROKER_PATRONI_TTL), read at a cluster's bootstrap: a leader that stops renewing its lock loses it after this. loop_wait is 1 and retry_timeout (ttl-1)/2 rounded down, within Patroni's rule loop_wait + 2 retry_timeout <= ttl."
  validation {
    condition     = var.patroni_ttl >= 5
    error_message = "The patroni_ttl must be at least 5 (retry_timeout at least 2 s: at 1 s a hung leader was never replaced)."
  }
}

variable "patroni_python" {
  type        = string
  default     = "/usr/bin/python3"
  description = "The Python that has Debian's patroni package (python3-patroni) on its path."
}

variable "postgres_uid" {
  type        = number
  default     = 999
  description = "Numeric uid of the user PostgreSQL runs as on the clients (postgres); owns the rendered TLS key, which PostgreSQL requires."
}

variable "postgres_gid" {
  type        = number
  default     = 999
  description = "Numeric gid of that user."
}

# Point-in-time recovery (pgBackRest). pitr_repo set: WAL is archived to the
# stanza <instance> of the posix repository at pitr_repo (archive_timeout 60 s);
# base backups are taken by the broker (pgbackrest backup, basebackup.nomad.hcl).
# pitr_restore_id and pitr_target set: before starting, the node restores the
# stanza to pitr_target (pgbackrest restore --delta --type=time, then promote),
# once per pitr_restore_id.
variable "pitr_repo" {
  type        = string
  default     = ""
  description = "Absolute directory on the client of the pgBackRest repository; empty: no WAL archiving."
  validation {
    condition     = var.pitr_repo == "" || (substr(var.pitr_repo, 0, 1) == "/" && var.pitr_repo != "/" && regex_replace(var.pitr_repo, "/\\.\\.?(/|$)", "") == var.pitr_repo)
    error_message = "The pitr_repo must be empty or an absolute path without . or .. segments."
  }
}

variable "pitr_restore_id" {
  type        = string
  default     = ""
  description = "Id of a point-in-time restore to carry out before starting (the broker's operation id)."
  validation {
    condition     = regex_replace(var.pitr_restore_id, "^[a-z0-9-]{0,64}$", "") == ""
    error_message = "The pitr_restore_id must be lower-case letters, digits and dashes."
  }
}

variable "pitr_source" {
  type        = string
  default     = ""
  description = "With pitr_restore_id: restore the stanza of this other instance (short id; provision parameter restore_from.point_in_time) instead of the instance's own. The instance's own stanza is emptied first: from then on it archives the restored cluster."
  validation {
    condition     = regex_replace(var.pitr_source, "^([a-z0-9]([a-z0-9-]{0,30}[a-z0-9])?)?$", "") == ""
    error_message = "The pitr_source must be empty or 1 to 32 lower-case letters, digits and inner dashes."
  }
}

variable "pitr_set" {
  type        = string
  default     = ""
  description = "With pitr_restore_id: the label of the base backup to restore from (pgBackRest --set). pgBackRest's own choice compares whole seconds and refuses a target in the second its only base backup ended; the broker chooses instead."
  validation {
    condition     = regex_replace(var.pitr_set, "^([0-9]{8}-[0-9]{6}F(_[0-9]{8}-[0-9]{6}[DI])?)?$", "") == ""
    error_message = "The pitr_set must be empty or a pgBackRest backup label such as 20261123-181709F."
  }
}

variable "pitr_target" {
  type        = string
  default     = ""
  description = "Restore target time, \"YYYY-MM-DD HH:MM:SS.ffffff+00\" (UTC)."
  validation {
    condition     = regex_replace(var.pitr_target, "^([0-9]{4}-[0-9]{2}-[0-9]{2} [0-9]{2}:[0-9]{2}:[0-9]{2}(\\.[0-9]{1,6})?\\+00)?$", "") == ""
    error_message = "The pitr_target must be empty or \"YYYY-MM-DD HH:MM:SS[.ffffff]+00\"."
  }
}

# The pgBackRest repository in S3 (issue #4 "Backups", item 3): with
# pitr_s3_endpoint set, the repository is the bucket pitr_s3_bucket there
# (TLS, path-style requests) and pitr_repo is its path in the bucket. The keys
# come only from the job's Nomad Variable (items pitr_s3_key and
# pitr_s3_key_secret), rendered into secrets/pgbackrest.conf.
variable "pitr_s3_endpoint" {
  type        = string
  default     = ""
  description = "Host name or IPv4 address of the S3-compatible endpoint of the pgBackRest repository; empty: the repository is the directory pitr_repo on the client."
  validation {
    condition     = regex_replace(var.pitr_s3_endpoint, "^([A-Za-z0-9]([A-Za-z0-9.-]{0,251}[A-Za-z0-9])?)?$", "") == ""
    error_message = "The pitr_s3_endpoint must be empty or a host name or IPv4 address."
  }
}

variable "pitr_s3_port" {
  type        = number
  default     = 443
  description = "HTTPS port of pitr_s3_endpoint."
}

variable "pitr_s3_bucket" {
  type        = string
  default     = ""
  description = "With pitr_s3_endpoint: the bucket of the repository."
  validation {
    condition     = regex_replace(var.pitr_s3_bucket, "^([a-z0-9][a-z0-9.-]{1,61}[a-z0-9])?$", "") == ""
    error_message = "The pitr_s3_bucket must be empty or an S3 bucket name."
  }
}

variable "pitr_s3_region" {
  type        = string
  default     = "us-east-1"
  description = "With pitr_s3_endpoint: the S3 signing region."
  validation {
    condition     = regex_replace(var.pitr_s3_region, "^[A-Za-z0-9_-]{1,64}$", "") == ""
    error_message = "The pitr_s3_region must be 1 to 64 letters, digits, dashes and underscores."
  }
}

variable "pitr_s3_ca" {
  type        = string
  default     = ""
  description = "With pitr_s3_endpoint: PEM certificates the endpoint's certificate chains to, rendered into local/pitr-s3-ca.pem; empty: the system's CAs."
  validation {
    condition     = regex_replace(var.pitr_s3_ca, "^[A-Za-z0-9+/=\\s-]*$", "") == ""
    error_message = "The pitr_s3_ca must hold PEM certificates only."
  }
}

# Base backups of a Business instance are taken from a standby (pgBackRest
# backup-standby, basebackup.nomad.hcl): the batch job on the standby's
# client reaches the primary's pgBackRest through the TLS server each node
# runs (task "pgbackrest", port "pgbackrest", tagged pgbackrest=<port> on the
# node service). It presents the certificate of the Variable's items
# pgbackrest_server_certificate and pgbackrest_server_private_key (issued by
# the broker for the nodes' addresses) and admits only a client certificate
# from broker_ca with CN pgbroker-basebackup-<instance>, for this instance's stanza.
variable "broker_ca" {
  type        = string
  default     = ""
  description = "PEM of the broker's CA. It signs the base backup job's client certificate (pgBackRest's TLS server) and every node's certificate: a replication connection must present one (pg_hba clientcert), and Patroni's connections to other members verify theirs."
  validation {
    condition     = regex_replace(var.broker_ca, "^[A-Za-z0-9+/=\\s-]*$", "") == ""
    error_message = "The broker_ca must hold PEM certificates only."
  }
}

# Replication is admitted only from these networks (pg_hba.conf), with a
# client certificate from broker_ca and the replication password.
variable "node_networks" {
  type        = list(string)
  default     = ["0.0.0.0/0", "::/0"]
  description = "CIDRs the nodes of a cluster connect from (PGBROKER_NODE_NETWORKS)."
  validation {
    condition     = length(var.node_networks) > 0 && length([for c in var.node_networks : c if regex_replace(c, "^([0-9.]+/[0-9]{1,2}|[0-9A-Fa-f:]+/[0-9]{1,3})$", "ok") != "ok"]) == 0
    error_message = "Each node_networks entry must be an IPv4 or IPv6 CIDR."
  }
}

variable "postgres_bin_dir" {
  type    = string
  default = "/usr/lib/postgresql/15/bin"
}

variable "postgres_image" {
  type    = string
  default = "postgres:15"
}

locals {
  pitr = var.pitr_repo != ""
  # Business nodes with PITR run pgBackRest's TLS server beside PostgreSQL.
  pgbackrest_server = var.patroni && local.pitr
  docker = var.driver == "docker"
  # Holds node-<index>, one cluster per node (the task group's name, NOMAD_GROUP_NAME).
  instance_dir = "${var.data_root}/${var.instance}"
  # PostgreSQL's Unix socket directory, as a template expression (the group
  # name is known on the client only): <instance_dir>/run-<index>, on
  # the host so that batch jobs (basebackup.nomad.hcl) reach it too, or
  # /run/postgresql (Debian's, shared: the port makes the name unique) when
  # that is too long for a socket path (at most 107 bytes, "/.s.PGSQL.<port>"
  # adds up to 17). start.sh and basebackup.nomad.hcl follow the same rule.
  socket_dir = "{{ $s := printf \"%s/run-%s\" \"${local.instance_dir}\" (env \"NOMAD_GROUP_NAME\" | replaceAll \"node-\" \"\") }}{{ if gt (len $s) 90 }}/run/postgresql{{ else }}{{ $s }}{{ end }}"
}

job "pg-nodes" {
  type        = "service"
  datacenters = var.datacenters

  dynamic "constraint" {
    for_each = var.node_id == "" ? [] : [var.node_id]
    content {
      attribute = "${node.unique.id}"
      value     = constraint.value
    }
  }

  # No two nodes on one client.
  constraint {
    distinct_hosts = true
  }

  # One task group per node, "node-<index>", each of count 1: the broker
  # replaces them one at a time in the order it chooses (standbys first,
  # the leader last, so a Business plan change costs one switchover) by
  # registering versions that change one group at a time. Within one group
  # of count N Nomad replaces allocations in index order, whatever the roles.
  dynamic "group" {
    for_each = range(var.node_count)
    labels   = ["node-${group.value}"]
    content {
      # Pinned to the client holding this node's data directory (a repair
      # of a Business instance whose jobs Nomad lost): never another node's.
      dynamic "constraint" {
        for_each = [for i, c in var.node_clients : c if i == group.value && c != ""]
        content {
          attribute = "${node.unique.id}"
          value     = constraint.value
        }
      }

      network {
        port "pg" {
          host_network = var.host_network
        }
        dynamic "port" {
          for_each = var.patroni ? ["api"] : []
          labels   = ["api"]
          content {
            host_network = var.host_network
          }
        }
        dynamic "port" {
          for_each = local.pgbackrest_server ? ["pgbackrest"] : []
          labels   = ["pgbackrest"]
          content {
            host_network = var.host_network
          }
        }
      }

      service {
        provider = "nomad"
        name     = "pg-${var.instance}-node"
        port     = "pg"
        # The gateways' templates read the Patroni REST port from here.
        # And the pgBackRest TLS server's (base backups from a standby).
        tags = concat(var.patroni ? ["patroni=${NOMAD_PORT_api}"] : [], local.pgbackrest_server ? ["pgbackrest=${NOMAD_PORT_pgbackrest}"] : [])

        # No check opens a PostgreSQL session: each one would fork a backend,
        # and Nomad's TCP check never closes its connection (checkTCP in
        # client/serviceregistration/checks/client.go, Nomad 1.11.3), so the
        # backend then waits out authentication_timeout. At one a second
        # that kept about ten unauthenticated backends per node; fifty idle
        # instances saturated two cores (issue 18). Patroni nodes are checked
        # on Patroni's REST API instead (GET /health: 200 while PostgreSQL
        # runs; Patroni answers from its own connection). A single node has
        # no check: nothing routes by it, and the broker waits for SELECT 1
        # through the gateway itself (provisioner waitReady). The REST API
        # speaks TLS only; Nomad's own checks take no CA, so this one skips
        # verification: it reads a status code, nothing secret, and decides
        # only the deployment's health (the gateways verify, see gateways.nomad.hcl).
        dynamic "check" {
          for_each = var.patroni ? ["patroni"] : []
          content {
            name            = "patroni-health"
            type            = "http"
            protocol        = "https"
            tls_skip_verify = true
            port            = "api"
            path            = "/health"
            interval        = "5s"
            timeout         = "2s"
          }
        }
      }

      # Patroni nodes: healthy once Patroni reports PostgreSQL running. A
      # single node: once its task runs (the broker checks SELECT 1). The
      # broker drives rolling changes itself and waits on neither.
      update {
        max_parallel      = 1
        health_check      = var.patroni ? "checks" : "task_states"
        min_healthy_time  = "0s"
        healthy_deadline  = "3m"
        progress_deadline = "5m"
      }

      # Deregister the service first so gateways drop this node before postgres
      # stops: a connection reaching a postmaster in shutdown can hang until
      # authentication_timeout instead of failing at once.
      shutdown_delay = "500ms"

      restart {
        attempts = 5
        interval = "2m"
        delay    = "1s"
        mode     = "delay"
      }

      # Only logs and rendered files live in the allocation. sticky: a
      # replacement (a plan change) goes back to the same client when it can,
      # where its data directory is.
      ephemeral_disk {
        size   = 64
        sticky = true
      }

      task "postgres" {
        driver = var.driver
        # Postgres refuses to run as root. The docker image has the same user (uid 999).
        user = "postgres"

        dynamic "config" {
          for_each = local.docker ? [] : ["raw_exec"]
          content {
            command = "/bin/bash"
            args    = ["${NOMAD_TASK_DIR}/start.sh"]
          }
        }

        dynamic "config" {
          for_each = local.docker ? ["docker"] : []
          content {
            image        = var.postgres_image
            network_mode = "host"
            command      = "/bin/bash"
            args         = ["${NOMAD_TASK_DIR}/start.sh"]
            volumes      = ["${var.data_root}:${var.data_root}"]
            # Parallel query and shared memory segments live in /dev/shm (64 MiB by default).
            shm_size = floor(var.memory_mib / 4) * 1048576
          }
        }

        # SIGINT is PostgreSQL's fast shutdown: sessions are cut, a checkpoint is
        # written. Patroni on SIGTERM stops PostgreSQL the same way and releases
        # the leader lock, so a standby takes over at once.
        kill_signal  = var.patroni ? "SIGTERM" : "SIGINT"
        kill_timeout = "30s"

        resources {
          cpu    = var.cpu_mhz
          memory = var.memory_mib
        }

        # A single node writes its own logs into the allocation's log
        # directory (start.sh and PostgreSQL's logging collector, below): no
        # logmon process, whose two 100 ms flush tickers cost an idle node
        # more CPU than PostgreSQL itself (issue 18). Patroni nodes keep
        # Nomad's log collection.
        logs {
          disabled      = !var.patroni && !local.docker
          max_files     = 3
          max_file_size = 10
        }

        # The passwords reach the start script as environment variables read from
        # this file. The client (root) renders and reads it, mode 0600: template
        # uid/gid take numeric ids only, and the postgres uid differs between
        # Debian clients (the postgres image uses 999). The start script hands the
        # admin password to initdb through a private file and unsets both
        # before exec'ing postgres. A rotated password does not restart postgres:
        # the broker changes it in the database.
        template {
          destination = "secrets/postgres.env"
          env         = true
          perms       = "0600"
          change_mode = "noop"
          # The client's default wait (5 s of quiet before a re-render) would
          # leave a restart in the first seconds after the broker marks
          # cluster_made starting without the mark: free to initdb.
          wait {
            min = "100ms"
            max = "1s"
          }
          data        = <<-EOT
            {{- with nomadVar (printf "nomad/jobs/%s" (env "NOMAD_JOB_ID")) }}
            PGBROKER_ADMIN_PASSWORD={{ .admin_password.Value | toJSON }}
            PGBROKER_REPLICATION_PASSWORD={{ .replication_password.Value | toJSON }}
            {{- range $k, $v := . }}{{ if eq $k "cluster_made" }}
            PGBROKER_CLUSTER_MADE=1
            {{- end }}{{ end }}
            {{- end }}
          EOT
        }

        # Certificate and key in one file (PostgreSQL reads the CERTIFICATE block
        # for ssl_cert_file and the PRIVATE KEY block for ssl_key_file), so a
        # renewal never pairs a new certificate with an old key. Owned by the
        # postgres user, mode 0600: PostgreSQL refuses a key others can read.
        template {
          destination   = "secrets/server.pem"
          perms         = "0600"
          uid           = var.postgres_uid
          gid           = var.postgres_gid
          change_mode   = "signal"
          change_signal = "SIGHUP"
          splay         = "0s"
          wait {
            min = "100ms"
            max = "1s"
          }
          data = <<-EOT
            {{- with nomadVar (printf "nomad/jobs/%s" (env "NOMAD_JOB_ID")) }}
            {{- .server_certificate.Value }}
            {{- .server_private_key.Value }}
            {{- end }}
          EOT
        }

        # The broker's CA, for ssl_ca_file and Patroni (restapi.cafile, sslrootcert).
        dynamic "template" {
          for_each = var.broker_ca != "" ? ["ca"] : []
          content {
            destination = "local/broker-ca.pem"
            data        = var.broker_ca
          }
        }

        template {
          destination = "local/start.sh"
          perms       = "0755"
          data        = <<-EOT
            #!/bin/bash
            # Rendered from nodes.nomad.hcl: makes this node's cluster once, then runs postgres.
            set -euo pipefail
            %{ if !var.patroni && !local.docker }
            # Nomad collects no logs of this task (logs.disabled): this
            # script and PostgreSQL until its logging collector starts write
            # here, the collector to postgres-<hour>.log beside it.
            log="$NOMAD_ALLOC_DIR/logs/postgres.stderr.0"
            if [[ $(stat -c %s "$log" 2>/dev/null || echo 0) -gt 10485760 ]]; then mv -f -- "$log" "$log.1"; fi
            exec >>"$log" 2>&1
            %{ endif }
            bin='${var.postgres_bin_dir}'
            instance_dir='${local.instance_dir}'
            data_dir="$instance_dir/$NOMAD_GROUP_NAME"
            umask 077
            # The Unix socket directory (locals.socket_dir): on the host, for batch jobs.
            socket_dir="$instance_dir/run-$${NOMAD_GROUP_NAME#node-}"
            if (( $${#socket_dir} + 17 > 107 )); then
              socket_dir=/run/postgresql
              if [[ ! -w $socket_dir ]]; then
                echo "start: $instance_dir is too long for a Unix socket and $socket_dir is not writable; TCP only" >&2
                socket_dir=""
              fi
            else
              mkdir -p -m 0700 "$socket_dir"
            fi

            %{ if var.patroni }
            # Patroni makes, clones, adopts or rewinds the cluster itself. Its
            # configuration (secrets/patroni.yml) holds the passwords; nothing
            # else of the task's environment reaches it (a PGPASSWORD would
            # override its passfile for replication).
            mkdir -p "$instance_dir"
            unset PGBROKER_ADMIN_PASSWORD PGBROKER_REPLICATION_PASSWORD
            #
            # Patroni polls a stopping PostgreSQL every STOP_POLLING_INTERVAL
            # (1 s in patroni/postgresql/__init__.py, not configurable) before
            # it hands the leader lock over in a switchover; a shutdown takes
            # about 0.1 s here, so that poll was most of a switchover's pause
            # in writes. The launcher polls every 0.1 s instead; everything
            # else is Patroni's own entry point.
            exec env -i PATH=/usr/bin:/bin HOME="$NOMAD_TASK_DIR" LANG=C.UTF-8 \
              '${var.patroni_python}' -c 'import sys, patroni.postgresql
            patroni.postgresql.STOP_POLLING_INTERVAL = 0.1
            from patroni.__main__ import main
            sys.argv[0] = "patroni"
            sys.exit(main())' "$NOMAD_SECRETS_DIR/patroni.yml"
            %{ endif }
            if [[ ! -f $data_dir/PG_VERSION ]]; then
              %{ if var.pitr_restore_id == "" }
              # The broker marks the Variable (cluster_made) once the cluster
              # exists: no cluster here then means this is not the client
              # of its data, or its data is lost. An empty cluster would
              # answer the old credentials as if nothing happened; failing
              # keeps the loss visible (the instance is degraded) until the
              # node runs on its data again or is restored from backups.
              if [[ -n $${PGBROKER_CLUSTER_MADE:-} ]]; then
                echo "start: no cluster at $data_dir on this client, and the instance's cluster was made before; refusing to initdb an empty one in place of its data (its data is on another client, or lost: restore the instance from its backups)" >&2
                exit 1
              fi
              %{ endif }
              if [[ -z $${PGBROKER_ADMIN_PASSWORD:-} ]]; then
                echo "start: no admin_password in the Nomad Variable nomad/jobs/$NOMAD_JOB_ID" >&2
                exit 1
              fi
              mkdir -p "$instance_dir"
              # initdb into a fresh sibling, then rename it into place: a crash
              # leaves a leftover to delete, never a half cluster at $data_dir.
              rm -rf -- "$data_dir".initdb.*
              tmp=$(mktemp -d "$data_dir.initdb.XXXXXX")
              pwfile="$NOMAD_SECRETS_DIR/initdb-password"
              printf '%s\n' "$PGBROKER_ADMIN_PASSWORD" >"$pwfile"
              "$bin/initdb" --pgdata="$tmp" --username=pgbroker_admin --pwfile="$pwfile" \
                --auth=scram-sha-256 --encoding=UTF8 --locale=C.UTF-8 --data-checksums \
                --no-sync --no-instructions
              rm -f "$pwfile"
              # -T: replace an empty directory, fail on a non-empty one.
              mv -T "$tmp" "$data_dir"
            fi
            %{ if local.pitr }
            %{ if var.pitr_s3_endpoint == "" }mkdir -p '${var.pitr_repo}'%{ endif }
            %{ if var.pitr_restore_id != "" }
            # Point-in-time restore ${var.pitr_restore_id}, once: the marker is written
            # only after pgBackRest restored, so a crash before it restores again.
            marker="$data_dir/pgbroker-pitr-${var.pitr_restore_id}"
            if [[ ! -f $marker ]]; then
              %{ if var.pitr_source == "" }
              echo "start: restoring stanza ${var.instance} to ${var.pitr_target}" >&2
              pgbackrest --config="$NOMAD_SECRETS_DIR/pgbackrest.conf" --stanza='${var.instance}' \
                --delta --type=time --target='${var.pitr_target}' --target-action=promote %{ if var.pitr_set != "" }--set='${var.pitr_set}' %{ endif }restore
              %{ else }
              # The cluster becomes a copy of another instance's: its own stanza
              # (made for the cluster initdb created) would refuse its WAL.
              %{ if var.pitr_s3_endpoint == "" }
              rm -rf --one-file-system -- '${var.pitr_repo}/archive/${var.instance}' '${var.pitr_repo}/backup/${var.instance}'
              %{ else }
              # stanza-delete wants the stop file (it removes it); --force: PostgreSQL is not running here.
              pgbackrest --config="$NOMAD_SECRETS_DIR/pgbackrest.conf" --stanza='${var.instance}' stop
              pgbackrest --config="$NOMAD_SECRETS_DIR/pgbackrest.conf" --stanza='${var.instance}' --force stanza-delete
              %{ endif }
              echo "start: restoring stanza ${var.pitr_source} to ${var.pitr_target}" >&2
              pgbackrest --config="$NOMAD_SECRETS_DIR/pgbackrest.conf" --stanza='${var.pitr_source}' --pg1-path="$data_dir" \
                --delta --type=time --target='${var.pitr_target}' --target-action=promote %{ if var.pitr_set != "" }--set='${var.pitr_set}' %{ endif }restore
              %{ endif }
              touch "$marker"
            fi
            %{ endif }
            %{ endif }
            unset PGBROKER_ADMIN_PASSWORD PGBROKER_REPLICATION_PASSWORD

            exec "$bin/postgres" -D "$data_dir" -c config_file="$NOMAD_TASK_DIR/postgresql.conf" \
              -c unix_socket_directories="$socket_dir"
          EOT
        }

        dynamic "template" {
          for_each = var.patroni ? ["patroni"] : []
          content {
            destination = "secrets/patroni.yml"
            perms       = "0600"
            uid         = var.postgres_uid
            gid         = var.postgres_gid
            change_mode = "noop"
            data        = <<-EOT
              # Rendered from nodes.nomad.hcl. Parameters Patroni sets on the
              # command line (max_connections, wal_level, ...) come from the
              # DCS, seeded by bootstrap.dcs; the rest from postgresql.conf
              # (custom_conf).
              {{- with nomadVar (printf "nomad/jobs/%s" (env "NOMAD_JOB_ID")) }}
              scope: pg-${var.instance}
              namespace: /pgbroker/
              name: {{ env "NOMAD_GROUP_NAME" }}
              log:
                level: INFO
              # The REST API speaks TLS only, with the node's server
              # certificate (from the broker's CA, naming pg-${var.instance}-node),
              # and asks a password of its own for changes (PATCH /config,
              # POST /switchover). The broker and the gateways check the
              # certificate's name; members ask each other by address, so
              # ctl.insecure drops only the name check: with certfile set,
              # Patroni still requires a chain to cafile (patroni/request.py).
              restapi:
                listen: {{ env "NOMAD_IP_api" }}:{{ env "NOMAD_PORT_api" }}
                connect_address: {{ env "NOMAD_IP_api" }}:{{ env "NOMAD_PORT_api" }}
                certfile: {{ env "NOMAD_SECRETS_DIR" }}/server.pem
                keyfile: {{ env "NOMAD_SECRETS_DIR" }}/server.pem
                cafile: {{ env "NOMAD_TASK_DIR" }}/broker-ca.pem
                authentication:
                  username: patroni
                  password: {{ .patroni_password.Value | toJSON }}
              ctl:
                insecure: true
              etcd3:
                hosts: ${join(",", var.etcd_hosts)}
                protocol: https
                %{ if var.etcd_ca != "" }cacert: {{ env "NOMAD_TASK_DIR" }}/etcd-ca.pem%{ endif }
                username: pg-${var.instance}
                password: {{ .etcd_password.Value | toJSON }}
              bootstrap:
                dcs:
                  ttl: ${var.patroni_ttl}
                  loop_wait: 1
                  retry_timeout: ${floor((var.patroni_ttl - 1) / 2)}
                  maximum_lag_on_failover: 1048576
                  synchronous_mode: true
                  synchronous_mode_strict: false
                  postgresql:
                    use_pg_rewind: true
                    use_slots: true
                    parameters:
                      max_connections: ${var.max_connections}
                      wal_level: replica
                      hot_standby: "on"
                      max_wal_senders: 10
                      max_replication_slots: 10
                      wal_log_hints: "on"
                      # Dumps read a standby: keep replay from cancelling them.
                      hot_standby_feedback: "on"
                initdb:
                  - encoding: UTF8
                  - locale: C.UTF-8
                  - data-checksums
                  - auth-local: scram-sha-256
                  - auth-host: scram-sha-256
              postgresql:
                listen: {{ env "NOMAD_IP_pg" }}:{{ env "NOMAD_PORT_pg" }}
                connect_address: {{ env "NOMAD_IP_pg" }}:{{ env "NOMAD_PORT_pg" }}
                data_dir: ${local.instance_dir}/{{ env "NOMAD_GROUP_NAME" }}
                bin_dir: ${var.postgres_bin_dir}
                pgpass: {{ env "NOMAD_SECRETS_DIR" }}/pgpass
                custom_conf: {{ env "NOMAD_TASK_DIR" }}/postgresql.conf
                # A standby clones the leader with pg_basebackup, which waits
                # for a checkpoint first: a spread one paces its writes over
                # checkpoint_completion_target of checkpoint_timeout, seconds
                # even on a fresh cluster (5.4 s of a 14.8 s Business
                # provision here). A fast one writes at once.
                basebackup:
                  - checkpoint: fast
                parameters:
                  hba_file: {{ env "NOMAD_SECRETS_DIR" }}/pg_hba.conf
                  unix_socket_directories: '${local.socket_dir}'
                authentication:
                  superuser:
                    username: pgbroker_admin
                    password: {{ .admin_password.Value | toJSON }}
                  # Replication and pg_rewind connect to the leader by
                  # address: TLS checked against the broker's CA (verify-ca:
                  # the certificate names the node service, not addresses),
                  # SCRAM bound to that channel, and for replication the
                  # node's own certificate as client certificate (pg_hba.conf).
                  replication:
                    username: replicator
                    password: {{ .replication_password.Value | toJSON }}
                    sslmode: verify-ca
                    sslrootcert: {{ env "NOMAD_TASK_DIR" }}/broker-ca.pem
                    sslcert: {{ env "NOMAD_SECRETS_DIR" }}/server.pem
                    sslkey: {{ env "NOMAD_SECRETS_DIR" }}/server.pem
                    channel_binding: require
                  rewind:
                    username: pgbroker_admin
                    password: {{ .admin_password.Value | toJSON }}
                    sslmode: verify-ca
                    sslrootcert: {{ env "NOMAD_TASK_DIR" }}/broker-ca.pem
                    channel_binding: require
              {{- end }}
            EOT
          }
        }

        template {
          destination = "local/postgresql.conf"
          data        = <<-EOT
            # Rendered from nodes.nomad.hcl; the data directory's own postgresql.conf is not read.
            listen_addresses = '{{ env "NOMAD_IP_pg" }}'
            port = {{ env "NOMAD_PORT_pg" }}
            hba_file = '{{ env "NOMAD_SECRETS_DIR" }}/pg_hba.conf'
            max_connections = ${var.max_connections}
            autovacuum_naptime = ${var.autovacuum_naptime_s}s
            shared_buffers = ${floor(var.memory_mib / 4)}MB
            effective_cache_size = ${floor(var.memory_mib * 3 / 4)}MB
            password_encryption = 'scram-sha-256'
            ssl = on
            ssl_cert_file = '{{ env "NOMAD_SECRETS_DIR" }}/server.pem'
            ssl_key_file = '{{ env "NOMAD_SECRETS_DIR" }}/server.pem'
            ssl_min_protocol_version = 'TLSv1.2'
            %{ if var.broker_ca != "" }
            # Verifies the client certificate a replication connection must present (pg_hba.conf).
            ssl_ca_file = '{{ env "NOMAD_TASK_DIR" }}/broker-ca.pem'
            %{ endif }
            shared_preload_libraries = '${join(",", var.shared_preload_libraries)}'
            # Also bounds how long a shutdown waits for connections that never authenticate.
            authentication_timeout = 10s
            wal_level = replica
            max_wal_senders = 10
            dynamic_shared_memory_type = posix
            log_destination = 'stderr'
            %{ if !var.patroni && !local.docker }
            # Nomad collects no logs of a single node: one file per hour of
            # the day, truncated when reused, so at most 24 files.
            logging_collector = on
            log_directory = '{{ env "NOMAD_ALLOC_DIR" }}/logs'
            log_filename = 'postgres-%H.log'
            log_rotation_age = 60
            log_rotation_size = 0
            log_truncate_on_rotation = on
            log_file_mode = 0640
            %{ else }
            logging_collector = off
            %{ endif }
            log_line_prefix = '%m [%p] %q%u@%d '
            log_timezone = 'UTC'
            timezone = 'UTC'
            datestyle = 'iso, mdy'
            lc_messages = 'C.UTF-8'
            lc_monetary = 'C.UTF-8'
            lc_numeric = 'C.UTF-8'
            lc_time = 'C.UTF-8'
            default_text_search_config = 'pg_catalog.english'
            include_if_exists = '{{ env "NOMAD_TASK_DIR" }}/pitr.conf'
          EOT
        }

        # WAL archiving and pgBackRest's configuration (point-in-time recovery).
        dynamic "template" {
          for_each = local.pitr ? ["pitr"] : []
          content {
            destination = "local/pitr.conf"
            data        = <<-EOT
              archive_mode = on
              archive_command = 'pgbackrest --config={{ env "NOMAD_SECRETS_DIR" }}/pgbackrest.conf --stanza=${var.instance} archive-push %p'
              archive_timeout = 60
            EOT
          }
        }

        # In secrets/, readable by postgres alone: with S3 it holds the keys.
        dynamic "template" {
          for_each = local.pitr ? ["pgbackrest"] : []
          content {
            destination = "secrets/pgbackrest.conf"
            perms       = "0600"
            uid         = var.postgres_uid
            gid         = var.postgres_gid
            change_mode = "noop"
            data        = <<-EOT
              [global]
              repo1-path=${var.pitr_repo}
              %{ if var.pitr_s3_endpoint != "" }
              repo1-type=s3
              repo1-s3-endpoint=${var.pitr_s3_endpoint}
              repo1-storage-port=${var.pitr_s3_port}
              repo1-s3-bucket=${var.pitr_s3_bucket}
              repo1-s3-region=${var.pitr_s3_region}
              repo1-s3-uri-style=path
              %{ if var.pitr_s3_ca != "" }
              repo1-storage-ca-file={{ env "NOMAD_TASK_DIR" }}/pitr-s3-ca.pem
              %{ endif }
              {{- with nomadVar (printf "nomad/jobs/%s" (env "NOMAD_JOB_ID")) }}
              repo1-s3-key={{ .pitr_s3_key.Value }}
              repo1-s3-key-secret={{ .pitr_s3_key_secret.Value }}
              {{- end }}
              %{ endif }
              repo1-retention-full-type=time
              repo1-retention-full=7
              lock-path={{ env "NOMAD_TASK_DIR" }}/pgbackrest-lock
              log-path={{ env "NOMAD_TASK_DIR" }}/pgbackrest-log
              log-level-console=warn
              log-level-file=off
              start-fast=y
              # lz4: archive-push is on the path of every shutdown (a
              # switchover, a plan change waits for the archiver); gzip's
              # level 6 costs seconds per 16 MB segment on a small node.
              compress-type=lz4

              [${var.instance}]
              pg1-path=${local.instance_dir}/{{ env "NOMAD_GROUP_NAME" }}
              pg1-port={{ env "NOMAD_PORT_pg" }}
              pg1-socket-path=${local.socket_dir}
              pg1-user=pgbroker_admin
            EOT
          }
        }

        dynamic "template" {
          for_each = var.patroni && var.etcd_ca != "" ? ["etcd-ca"] : []
          content {
            destination = "local/etcd-ca.pem"
            change_mode = "noop"
            data        = var.etcd_ca
          }
        }

        dynamic "template" {
          for_each = local.pitr && var.pitr_s3_ca != "" ? ["pitr-s3-ca"] : []
          content {
            destination = "local/pitr-s3-ca.pem"
            change_mode = "noop"
            data        = var.pitr_s3_ca
          }
        }

        # Force TLS: with force_tls = "true" only TLS connections may log in
        # (hostssl); a plaintext one is refused ("no encryption"). Replication
        # always needs TLS. In secrets/ like every file rendered from the
        # Variable, so readable by postgres alone.
        template {
          destination   = "secrets/pg_hba.conf"
          perms         = "0600"
          uid           = var.postgres_uid
          gid           = var.postgres_gid
          change_mode   = "signal"
          change_signal = "SIGHUP"
          splay         = "0s"
          wait {
            min = "100ms"
            max = "1s"
          }
          data = <<-EOT
            {{- $host := "host" }}
            {{- with nomadVar (printf "nomad/jobs/%s" (env "NOMAD_JOB_ID")) }}
            {{- if eq .force_tls.Value "true" }}{{ $host = "hostssl" }}{{ end }}
            {{- end }}
            # TYPE  DATABASE     USER        ADDRESS    METHOD
            local   all          all                    scram-sha-256
            {{ $host }}    all          all         0.0.0.0/0  scram-sha-256
            {{ $host }}    all          all         ::/0       scram-sha-256
            # Replication: from the node networks, over TLS, with the
            # replication password and a client certificate from the
            # broker's CA (a node's own; Patroni sends it).
            %{ for net in var.node_networks }
            hostssl replication  replicator  ${net}  scram-sha-256%{ if var.broker_ca != "" } clientcert=verify-ca%{ endif }
            %{ endfor }
          EOT
        }
      }

      # pgBackRest's TLS server: a base backup taken from a standby runs
      # pg_backup_start/stop on the primary through it (pgbackrest server).
      dynamic "task" {
        for_each = local.pgbackrest_server ? ["pgbackrest"] : []
        labels   = ["pgbackrest"]
        content {
          driver = var.driver
          user   = "postgres"

          dynamic "config" {
            for_each = local.docker ? [] : ["raw_exec"]
            content {
              command = "pgbackrest"
              args    = ["--config=${NOMAD_SECRETS_DIR}/pgbackrest-server.conf", "server"]
            }
          }

          dynamic "config" {
            for_each = local.docker ? ["docker"] : []
            content {
              image        = var.postgres_image
              network_mode = "host"
              command      = "pgbackrest"
              args         = ["--config=${NOMAD_SECRETS_DIR}/pgbackrest-server.conf", "server"]
              volumes      = ["${var.data_root}:${var.data_root}"]
            }
          }

          # The remote pgBackRest logs in to PostgreSQL through its socket as
          # pgbroker_admin: PGPASSWORD from the Variable, never in the spec.
          template {
            destination = "secrets/pg.env"
            env         = true
            perms       = "0600"
            change_mode = "restart"
            data        = <<-EOT
              {{- with nomadVar (printf "nomad/jobs/%s" (env "NOMAD_JOB_ID")) }}
              PGPASSWORD={{ .admin_password.Value | toJSON }}
              {{- end }}
            EOT
          }

          template {
            destination = "secrets/pgbackrest-server.pem"
            perms       = "0600"
            uid         = var.postgres_uid
            gid         = var.postgres_gid
            change_mode = "restart"
            data        = <<-EOT
              {{- with nomadVar (printf "nomad/jobs/%s" (env "NOMAD_JOB_ID")) }}
              {{- .pgbackrest_server_certificate.Value }}
              {{- .pgbackrest_server_private_key.Value }}
              {{- end }}
            EOT
          }

          template {
            destination = "local/broker-ca.pem"
            change_mode = "restart"
            data        = var.broker_ca
          }

          template {
            destination = "secrets/pgbackrest-server.conf"
            perms       = "0600"
            uid         = var.postgres_uid
            gid         = var.postgres_gid
            change_mode = "restart"
            data        = <<-EOT
              [global]
              tls-server-address={{ env "NOMAD_IP_pgbackrest" }}
              tls-server-port={{ env "NOMAD_PORT_pgbackrest" }}
              tls-server-cert-file={{ env "NOMAD_SECRETS_DIR" }}/pgbackrest-server.pem
              tls-server-key-file={{ env "NOMAD_SECRETS_DIR" }}/pgbackrest-server.pem
              tls-server-ca-file={{ env "NOMAD_TASK_DIR" }}/broker-ca.pem
              tls-server-auth=pgbroker-basebackup-${var.instance}=${var.instance}
              lock-path={{ env "NOMAD_TASK_DIR" }}/lock
              log-path={{ env "NOMAD_TASK_DIR" }}
              log-level-console=warn
              log-level-file=off
            EOT
          }

          resources {
            cpu    = 100
            memory = 64
          }

          logs {
            max_files     = 1
            max_file_size = 5
          }
        }
      }
    }
  }
}
