# One phase of the major upgrade of a single-node instance's cluster with
# pg_upgrade (issue 15), run on the client that holds its data
# (<data_root>/<instance>/node-<node_index>). The broker runs the phases in
# order, each as its own batch job (ID pg-<instance>-upgrade-<phase>-<operation>):
#
#   check    the node runs: reads the live cluster's encoding, locale and
#            checksum setting (kept in <instance dir>/upgrade-initdb-args),
#            initdb's a new cluster with them beside the data directory
#            (<data dir>.pg<new_major>) and runs pg_upgrade --check against the
#            live cluster. A failure deletes the new cluster and the settings
#            and exits 1 with pg_upgrade's reason as the last line of standard
#            error; the instance is untouched. A stopped node with the
#            settings kept passed it before (a broker restarted after the stop).
#   upgrade  the node is stopped: initdb's the new cluster afresh, runs
#            pg_upgrade --link, marks it (pgbroker-upgraded), then moves the old
#            data directory aside (<data dir>.old) and the new one into its
#            place. A failure puts the old cluster back as it was (pg_upgrade's
#            ".old" suffix on global/pg_control removed, the new cluster
#            deleted) and exits 1 with the reason.
#   finish   the node runs the new major: ALTER EXTENSION ... UPDATE for every
#            extension of every database, vacuumdb --all --analyze-in-stages,
#            then deletes the old data directory and the work files.
#
# Every phase finds where an earlier run stopped from the files alone, so
# running one again (a broker restarted mid-operation) never runs pg_upgrade
# on an upgraded cluster: a data directory whose PG_VERSION is new_major is
# upgraded, and a marked new cluster is only moved into place.
# Runs as postgres; it logs in as pgbroker_admin over the Unix socket with
# the password of the job's Nomad Variable (item admin_password), never in
# the spec.

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
  description = "Task driver profile: raw_exec (binaries on the host) or docker (data_root mounted into postgres_image, which must hold both versions' binaries)."
  validation {
    condition     = contains(["raw_exec", "docker"], var.driver)
    error_message = "The driver must be raw_exec or docker."
  }
}

variable "datacenters" {
  type    = list(string)
  default = ["*"]
}

variable "node_id" {
  type        = string
  description = "The Nomad client node ID holding the instance's data."
}

variable "data_root" {
  type        = string
  description = "Absolute host directory of the instances' data (as in nodes.nomad.hcl)."
  validation {
    condition     = substr(var.data_root, 0, 1) == "/" && var.data_root != "/" && regex_replace(var.data_root, "/\\.\\.?(/|$)", "") == var.data_root
    error_message = "The data_root must be an absolute path without . or .. segments."
  }
}

variable "node_index" {
  type        = number
  default     = 0
  description = "Index of the node whose cluster is upgraded: names its data directory."
}

variable "phase" {
  type        = string
  description = "check, upgrade or finish (above)."
  validation {
    condition     = contains(["check", "upgrade", "finish"], var.phase)
    error_message = "The phase must be check, upgrade or finish."
  }
}

variable "old_bin_dir" {
  type        = string
  description = "Directory of the running major's binaries on the client."
}

variable "new_bin_dir" {
  type        = string
  description = "Directory of the target major's binaries on the client (pg_upgrade, initdb, psql, vacuumdb)."
}

variable "new_major" {
  type        = number
  description = "The target major version (18): an upgraded data directory's PG_VERSION."
}

variable "postgres_image" {
  type    = string
  default = "postgres:18"
}

locals {
  docker       = var.driver == "docker"
  instance_dir = "${var.data_root}/${var.instance}"
}

job "pg-upgrade" {
  type        = "batch"
  datacenters = var.datacenters

  constraint {
    attribute = "${node.unique.id}"
    value     = var.node_id
  }

  group "upgrade" {
    count = 1

    restart {
      attempts = 0
      mode     = "fail"
    }

    reschedule {
      attempts  = 0
      unlimited = false
    }

    ephemeral_disk {
      size = 10
    }

    task "upgrade" {
      driver = var.driver
      user   = "postgres"

      dynamic "config" {
        for_each = local.docker ? [] : ["raw_exec"]
        content {
          command = "/bin/bash"
          args    = ["${NOMAD_TASK_DIR}/upgrade.sh"]
        }
      }

      dynamic "config" {
        for_each = local.docker ? ["docker"] : []
        content {
          image        = var.postgres_image
          network_mode = "host"
          command      = "/bin/bash"
          args         = ["${NOMAD_TASK_DIR}/upgrade.sh"]
          volumes      = ["${var.data_root}:${var.data_root}"]
        }
      }

      template {
        destination = "secrets/pg.env"
        env         = true
        perms       = "0600"
        change_mode = "noop"
        data        = <<-EOT
          {{- with nomadVar (printf "nomad/jobs/%s" (env "NOMAD_JOB_ID")) }}
          PGPASSWORD={{ .admin_password.Value | toJSON }}
          {{- end }}
        EOT
      }

      template {
        destination = "local/upgrade.sh"
        perms       = "0755"
        data        = <<-EOT
          #!/bin/bash
          # Rendered from upgrade.nomad.hcl: phase ${var.phase}.
          set -euo pipefail
          umask 077
          old_bin='${var.old_bin_dir}'
          new_bin='${var.new_bin_dir}'
          new_major='${var.new_major}'
          instance_dir='${local.instance_dir}'
          data="$instance_dir/node-${var.node_index}"
          new="$data.pg$new_major"
          old="$data.old"
          args_file="$instance_dir/upgrade-initdb-args"
          work="$instance_dir/upgrade-work"
          export PGUSER=pgbroker_admin PGDATABASE=postgres
          say() { echo "upgrade: $*" >&2; }
          fail() { say "$*"; exit 1; }
          upgraded() { [[ $(cat "$data/PG_VERSION" 2>/dev/null) == "$new_major" ]]; }
          # The socket directory and port of the cluster running in $data (postmaster.pid lines 5 and 4).
          running() {
            [[ -f $data/postmaster.pid ]] || return 1
            PGHOST=$(sed -n 5p "$data/postmaster.pid")
            PGPORT=$(sed -n 4p "$data/postmaster.pid")
            export PGHOST PGPORT
            [[ -n $PGHOST && -n $PGPORT ]] && "$new_bin/pg_isready" -q
          }
          # A new cluster, made afresh with the old one's settings (args_file).
          fresh_cluster() {
            rm -rf -- "$new" "$new.initdb"
            mapfile -t initdb_args <"$args_file"
            pwfile="$NOMAD_SECRETS_DIR/initdb-password"
            printf '%s\n' "$PGPASSWORD" >"$pwfile"
            "$new_bin/initdb" --pgdata="$new.initdb" --username=pgbroker_admin --pwfile="$pwfile" \
              --auth=scram-sha-256 "$${initdb_args[@]}" --no-sync --no-instructions >/dev/null
            rm -f "$pwfile"
            mv -T "$new.initdb" "$new"
          }
          # pg_upgrade's reason, on one line: what follows its last passed
          # check ("... ok"), and the first problems it listed.
          reason() {
            local out=$1 text list last
            last=$(grep -n '[[:space:]]ok$' "$out" | tail -1 | cut -d: -f1)
            text=$(tail -n +"$(( $${last:-0} + 1 ))" "$out" | grep -v -e '^Failure, exiting' -e 'A list of' -e '^ *\/' | tr -s ' \n\t' ' ')
            [[ -n $text ]] || text=$(tail -5 "$out" | tr -s ' \n\t' ' ')
            list=$(grep -o '/[^ ]*\.txt' "$out" | head -1 || true)
            if [[ -n $list && -f $list ]]; then text+=" Problems: $(head -5 "$list" | tr -s ' \n\t' ' ')"; fi
            printf '%s' "$text" | cut -c1-440
          }
          # PostgreSQL 15.20 stamps an attribute option pg_attver on the columns
          # it creates; its own pg_dump leaves it out, but the new major's pg_dump
          # (which pg_upgrade runs) dumps it, and the new server refuses it
          # ("unrecognized parameter"), failing pg_upgrade while it restores
          # the schema. Drop it from the stopped old cluster first: catalog
          # only, and 15.20 runs columns without it (those made by 15.18).
          strip_attver() {
            local db
            rm -rf -- "$work"
            mkdir -p "$work"
            "$old_bin/pg_ctl" --pgdata="$data" --wait --silent --log="$work/old.log" \
              -o "-c listen_addresses='' -c unix_socket_directories='$work' -c port=50431 -c archive_mode=off -c shared_preload_libraries=''" start
            "$old_bin/psql" -h "$work" -p 50431 -XAtq -c "SELECT datname FROM pg_database WHERE datallowconn" | while IFS= read -r db; do
              "$old_bin/psql" -h "$work" -p 50431 -Xq -v ON_ERROR_STOP=1 -d "$db" -c \
                "UPDATE pg_catalog.pg_attribute SET attoptions = nullif(array(SELECT o FROM unnest(attoptions) o WHERE o NOT LIKE 'pg\_attver=%'), '{}') WHERE attoptions::text LIKE '%pg\_attver=%'"
            done
            "$old_bin/pg_ctl" --pgdata="$data" --wait --silent --mode=fast stop
          }
          pg_upgrade_in_work() {
            rm -rf -- "$work"
            mkdir -p "$work"
            cd "$work"
            "$new_bin/pg_upgrade" --old-bindir="$old_bin" --new-bindir="$new_bin" --old-datadir="$data" --new-datadir="$new" \
              --username=pgbroker_admin --socketdir="$work" --link "$@" >"$work/pg_upgrade.out" 2>&1
          }

          case '${var.phase}' in
          check)
            if upgraded; then say "$data is on PostgreSQL $new_major already"; exit 0; fi
            if [[ -f $new/pgbroker-upgraded ]]; then say "$new is upgraded already"; exit 0; fi
            # A server of the upgrade itself (pg_upgrade's, or the one that
            # drops pg_attver) runs with its socket in the work directory:
            # the check passed before; never touch the new cluster then.
            if [[ -f $args_file && $(sed -n 5p "$data/postmaster.pid" 2>/dev/null) == "$work" ]]; then
              say "an upgrade of this cluster is under way after a check that passed"; exit 0
            fi
            if ! running; then
              # Stopped by this upgrade after a check that passed (args_file
              # is kept only then): a broker restarted after the stop.
              if [[ -f $args_file ]]; then say "the node is stopped after a check that passed"; exit 0; fi
              fail "PostgreSQL is not running in $data: the check runs against the live cluster"
            fi
            # The old cluster's settings the new one must match.
            IFS='|' read -r encoding collate ctype provider icu checksums < <("$old_bin/psql" -XAtq -F '|' -c \
              "SELECT pg_encoding_to_char(encoding), datcollate, datctype, datlocprovider, coalesce(daticulocale, ''), current_setting('data_checksums') FROM pg_database WHERE datname = 'template0'")
            {
              echo "--encoding=$encoding"
              echo "--lc-collate=$collate"
              echo "--lc-ctype=$ctype"
              if [[ $provider == i ]]; then echo "--locale-provider=icu"; echo "--icu-locale=$icu"; else echo "--locale-provider=libc"; fi
              if [[ $checksums == on ]]; then echo "--data-checksums"; else echo "--no-data-checksums"; fi
            } >"$args_file.tmp"
            mv -f "$args_file.tmp" "$args_file"
            say "new cluster settings: $(tr '\n' ' ' <"$args_file")"
            fresh_cluster
            if ! pg_upgrade_in_work --check; then
              cat "$work/pg_upgrade.out"
              why=$(reason "$work/pg_upgrade.out")
              cd /
              rm -rf -- "$new" "$work" "$args_file"
              fail "pg_upgrade --check failed: $why"
            fi
            cat "$work/pg_upgrade.out"
            cd /
            rm -rf -- "$new" "$work"
            say "pg_upgrade --check passed"
            ;;
          upgrade)
            if upgraded; then say "$data is on PostgreSQL $new_major already"; exit 0; fi
            if [[ ! -f $new/pgbroker-upgraded ]]; then
              [[ -f $args_file ]] || fail "no $args_file: the check phase did not run"
              if [[ -f $data/postmaster.pid ]] && running; then fail "PostgreSQL still runs in $data"; fi
              # An earlier pg_upgrade that stopped while linking (its new
              # cluster never started): the old cluster is intact but for
              # the suffix pg_upgrade put on pg_control.
              if [[ -f $data/global/pg_control.old && ! -f $data/global/pg_control ]]; then
                mv "$data/global/pg_control.old" "$data/global/pg_control"
              fi
              strip_attver
              fresh_cluster
              if ! pg_upgrade_in_work; then
                cat "$work/pg_upgrade.out"
                why=$(reason "$work/pg_upgrade.out")
                cd /
                if [[ -f $data/global/pg_control.old && ! -f $data/global/pg_control ]]; then
                  mv "$data/global/pg_control.old" "$data/global/pg_control"
                fi
                rm -rf -- "$new"
                fail "pg_upgrade failed, the old cluster is back as it was: $why"
              fi
              cat "$work/pg_upgrade.out"
              touch "$new/pgbroker-upgraded"
              sync -f "$new/pgbroker-upgraded"
            fi
            # Move the upgraded cluster into place (each step found again after a crash).
            if [[ -d $data ]]; then
              rm -rf -- "$old"
              mv -T "$data" "$old"
            fi
            mv -T "$new" "$data"
            say "$data is on PostgreSQL $new_major; the old cluster is kept in $old until the new one passed its checks"
            ;;
          finish)
            upgraded || fail "$data is not on PostgreSQL $new_major"
            running || fail "PostgreSQL is not running in $data"
            "$new_bin/psql" -XAtq -c "SELECT datname FROM pg_database WHERE datallowconn ORDER BY datname" | while IFS= read -r db; do
              "$new_bin/psql" -XAtq -d "$db" -c "SELECT format('ALTER EXTENSION %I UPDATE;', extname) FROM pg_extension ORDER BY extname" |
                "$new_bin/psql" -Xq -v ON_ERROR_STOP=1 -d "$db" -f -
              say "extensions of database $db updated"
            done
            "$new_bin/vacuumdb" --all --analyze-in-stages
            rm -rf -- "$old" "$work" "$args_file"
            say "done"
            ;;
          esac
        EOT
      }

      resources {
        cpu    = 200
        memory = 256
      }

      logs {
        max_files     = 1
        max_file_size = 5
      }
    }
  }
}
