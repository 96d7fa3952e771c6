# One logical backup job of an instance's database, through the instance's
# gateway, in one of two modes (variable mode, which also names the task group
# and the task). A pgBackRest base backup is not a mode but its own file,
# basebackup.nomad.hcl: it runs as postgres beside a node's data directory,
# with variables of its own (data root, pgBackRest repository, primary).
#
# dump: pg_dump -Fc written to the backup directory on the client as
# <backup_dir>/<instance>/<backup_id>.dump (first as .partial, renamed once
# complete, so a file under the final name is always a whole dump). With
# s3_endpoint set, pg_dump's output streams instead straight into s3_object of
# s3_bucket as a multipart upload (rclone rcat, parts of s3_part_size_mib,
# credentials from the job's variable): nothing is spooled on the client, and
# the object may grow to 10,000 parts. A failed dump deletes what it uploaded.
# Logs in as pgbroker_admin with the item admin_password of the job's
# Variable.
#
# Both modes run as var.user (pgbroker-backup by default), never root: an
# unprivileged user that owns the backup directory and nothing else. pg_dump
# and pg_restore reach PostgreSQL over the network; no data directory is
# read, and user postgres, which runs every instance, cannot write where the
# dumps are.
#
# restore: pg_restore --clean --if-exists in a single transaction of the dump
# <backup_dir>/<source>/<backup_id>.dump (source: source_instance, else
# instance; with s3_endpoint set, s3_object of s3_bucket, streamed by rclone
# cat straight into pg_restore), so a failed restore leaves the database as it
# was. A dump holds the tenant's code (CHECK constraints, index expressions,
# defaults, triggers), and restoring it runs that code. So pg_restore never
# connects as a superuser: it logs in as pgbroker_restore, a role with no
# attribute but LOGIN and no membership but the instance's owner role, with
# the item restore_password of the job's Variable (the admin password is
# never read), and acts as that owner (--role=db_<instance>); RESET ROLE in
# tenant code leads back to pgbroker_restore only. Everything restored
# belongs to the owner role (--no-owner), as what read-write users create
# does. Grants are kept for the instance's own dumps and dropped (--no-acl)
# for another instance's, whose roles do not exist here. The dump's
# extensions (CREATE, COMMENT and, with --clean, DROP EXTENSION) and the
# superuser's schema extensions that holds them are left out
# through the table of contents (pg_restore --list, filtered, then
# --use-list): they need a superuser, and the instance keeps the extensions
# its extension settings made.
#
# The broker parses this file with the variables below, sets the job ID and
# name to pg-<instance>-dump-<backup_id> or pg-<instance>-restore-<operation>,
# puts the password (and the S3 keys, items s3_access_key_id and
# s3_secret_access_key) in the Nomad Variable nomad/jobs/<that job ID> before
# registering it, and purges job and variable once it has ended (for a
# restore, after taking pgbroker_restore's login away). Pinned to the
# instance's node (node_id), where the dump files are.
#
# By hand, the job ID is pg-<instance>-<mode>-<backup_id>; its Variable first
# (the password read from standard input, never from the command line):
#
#   nomad var put nomad/jobs/pg-0123456789ab-dump-manual-1 admin_password=-
#   nomad job run -var mode=dump -var instance=0123456789ab -var backup_id=manual-1 \
#     -var backup_dir=/srv/pgbroker/backups -var pg_host=127.0.0.1 -var pg_port=31000 \
#     nomad-jobs/backup.nomad.hcl
#
# and for a restore of that dump, restore_password (pgbroker_restore's, which
# must be able to log in) in nomad/jobs/pg-0123456789ab-restore-manual-1 and
# -var mode=restore.

variable "mode" {
  type        = string
  description = "What the job does: dump (pg_dump) or restore (pg_restore)."
  validation {
    condition     = contains(["dump", "restore"], var.mode)
    error_message = "The mode must be dump or restore."
  }
}

variable "instance" {
  type        = string
  description = "Short, stable instance id (12 hex characters from the broker)."
  validation {
    condition     = regex_replace(var.instance, "^[a-z0-9]([a-z0-9-]{0,30}[a-z0-9])?$", "ok") == "ok"
    error_message = "The instance must be 1 to 32 lower-case letters, digits and inner dashes."
  }
}

variable "backup_id" {
  type        = string
  description = "Id of the backup: names the dump file written or restored."
  validation {
    condition     = regex_replace(var.backup_id, "^[a-z0-9][a-z0-9-]{0,63}$", "ok") == "ok"
    error_message = "The backup_id must be 1 to 64 lower-case letters, digits and dashes."
  }
}

variable "source_instance" {
  type        = string
  default     = ""
  description = "Restore only: short id of the instance the dump was made of, when another one (restore_from): objects are then restored without the source's grants. A dump ignores it."
  validation {
    condition     = var.source_instance == "" || regex_replace(var.source_instance, "^[a-z0-9]([a-z0-9-]{0,30}[a-z0-9])?$", "ok") == "ok"
    error_message = "The source_instance must be 1 to 32 lower-case letters, digits and inner dashes."
  }
}

variable "driver" {
  type        = string
  default     = "raw_exec"
  description = "Task driver profile: raw_exec (Debian's pg_dump and pg_restore) or docker (postgres image)."
  validation {
    condition     = contains(["raw_exec", "docker"], var.driver)
    error_message = "The driver must be raw_exec or docker."
  }
}

variable "user" {
  type        = string
  default     = "pgbroker-backup"
  description = "User the task runs as: owns backup_dir, never root. raw_exec: a user name of the client; docker: uid[:gid] (the image has no such user)."
  validation {
    condition     = regex_replace(var.user, "^([a-z_][a-z0-9_-]{0,31}|[0-9]{1,10}(:[0-9]{1,10})?)$", "ok") == "ok" && var.user != "root" && regex_replace(var.user, "^0+(:.*)?$", "root") != "root"
    error_message = "The user must be a user name or uid[:gid] other than root (uid 0)."
  }
}

variable "datacenters" {
  type    = list(string)
  default = ["*"]
}

variable "backup_dir" {
  type        = string
  description = "Absolute directory on the client holding dumps (the filesystem backup storage)."
  validation {
    condition     = substr(var.backup_dir, 0, 1) == "/" && var.backup_dir != "/" && regex_replace(var.backup_dir, "/\\.\\.?(/|$)", "") == var.backup_dir
    error_message = "The backup_dir must be an absolute path without . or .. segments."
  }
}

variable "node_id" {
  type        = string
  default     = ""
  description = "When set, the Nomad client node ID to run on (the instance's node)."
}

variable "pg_host" {
  type        = string
  description = "IP address of the instance's gateway (libpq's hostaddr: the server's name is checked against the node service's, pg-<instance>-node)."
}

variable "broker_ca" {
  type        = string
  default     = ""
  description = "PEM of the broker's CA (the broker always sets it): the server certificate is verified against it (sslmode=verify-full). Without it (a run by hand) TLS is required but not verified. SCRAM is bound to the TLS channel either way (channel_binding=require)."
  validation {
    condition     = regex_replace(var.broker_ca, "^[A-Za-z0-9+/=\\s-]*$", "") == ""
    error_message = "The broker_ca must hold PEM certificates only."
  }
}

variable "pg_port" {
  type        = number
  description = "Port of the instance's gateway."
}

variable "s3_endpoint" {
  type        = string
  default     = ""
  description = "When set (http(s)://host[:port]), the dump lives in S3 and backup_dir is not used. Needs rclone 1.60 or later on the client (or in the image, for docker)."
}

variable "s3_part_size_mib" {
  type        = number
  default     = 32
  description = "Dump only: part size of the multipart upload in MiB (S3 allows 5 to 5120). The dump may grow to 10,000 parts; the task holds about three parts in memory."
  validation {
    condition     = var.s3_part_size_mib >= 5 && var.s3_part_size_mib <= 5120
    error_message = "The s3_part_size_mib must be from 5 to 5120."
  }
}

variable "s3_region" {
  type    = string
  default = "us-east-1"
}

variable "s3_bucket" {
  type    = string
  default = ""
}

variable "s3_object" {
  type        = string
  default     = ""
  description = "Object name of the dump in s3_bucket."
  validation {
    condition     = regex_replace(var.s3_object, "^[A-Za-z0-9._/-]*$", "") == ""
    error_message = "The s3_object may hold letters, digits, dots, dashes, underscores and slashes only."
  }
}

variable "postgres_bin_dir" {
  type    = string
  default = "/usr/lib/postgresql/15/bin" # also where the postgres:15 image has them
}

variable "postgres_image" {
  type    = string
  default = "postgres:15"
}

locals {
  s3      = var.s3_endpoint != ""
  docker  = var.driver == "docker"
  restore = var.mode == "restore"
  job_id  = "pg-${var.instance}-${var.mode}-${var.backup_id}"
  # The item of the job's Variable holding the password libpq logs in with.
  password_item = local.restore ? "restore_password" : "admin_password"
  # A dump is always written under its own instance.
  source = local.restore && var.source_instance != "" ? var.source_instance : var.instance
  dump_dir = "${var.backup_dir}/${local.source}"
  dump     = "${local.dump_dir}/${var.backup_id}.dump"
  # Another instance's dump: its reader role and users do not exist here.
  acl = local.source != var.instance ? "--no-acl" : ""
  # pg_restore --list lines are "<id>; <catalog oid> <oid> <kind> <schema> <name> <owner>":
  # the extensions' own entries and their comments, and the schema the
  # superuser keeps them in (pgadmin.ExtensionSchema: the owner role may not
  # drop or create it), with its grants; never a tenant's object.
  extension_entries = "^[0-9]+; [0-9]+ [0-9]+ (EXTENSION - |COMMENT - EXTENSION |SCHEMA - extensions |ACL - SCHEMA extensions |COMMENT - SCHEMA extensions )"
  bin               = var.postgres_bin_dir
}

job "pg-backup" {
  id          = local.job_id
  name        = local.job_id
  type        = "batch"
  datacenters = var.datacenters

  dynamic "constraint" {
    for_each = var.node_id == "" ? [] : [var.node_id]
    content {
      attribute = "${node.unique.id}"
      value     = constraint.value
    }
  }

  # Group and task are named after the mode (dump, restore).
  dynamic "group" {
    for_each = [var.mode]
    labels   = [var.mode]
    content {
      count = 1

      # A dump is tried once more in place; a failed restore rolled back, and
      # the broker reports it rather than retrying.
      restart {
        attempts = local.restore ? 0 : 1
        interval = "1h"
        delay    = "5s"
        mode     = "fail"
      }

      reschedule {
        attempts  = 0
        unlimited = false
      }

      ephemeral_disk {
        size = 10
      }

      dynamic "task" {
        for_each = [var.mode]
        labels   = [var.mode]
        content {
          driver = var.driver
          user   = var.user

          dynamic "config" {
            for_each = local.docker ? [] : ["raw_exec"]
            content {
              command = "/bin/bash"
              args    = ["${NOMAD_TASK_DIR}/${var.mode}.sh"]
            }
          }

          dynamic "config" {
            for_each = local.docker ? ["docker"] : []
            content {
              image        = var.postgres_image
              network_mode = "host"
              command      = "/bin/bash"
              args         = ["${NOMAD_TASK_DIR}/${var.mode}.sh"]
              volumes      = ["${var.backup_dir}:${var.backup_dir}"]
            }
          }

          # The password reaches libpq as PGPASSWORD, rendered by the client
          # from this job's own variable; never in the job spec.
          template {
            destination = "secrets/pg.env"
            env         = true
            perms       = "0600"
            change_mode = "noop"
            data        = <<-EOT
              {{- with nomadVar (printf "nomad/jobs/%s" (env "NOMAD_JOB_ID")) }}
              PGPASSWORD={{ .${local.password_item}.Value | toJSON }}
              {{- end }}
            EOT
          }

          dynamic "template" {
            for_each = var.broker_ca != "" ? ["broker-ca"] : []
            content {
              destination = "local/broker-ca.pem"
              change_mode = "noop"
              data        = var.broker_ca
            }
          }

          # S3 credentials of rclone's remote "dumps" (its RCLONE_CONFIG_<remote>_*
          # environment), from this job's own variable: never on a command line.
          dynamic "template" {
            for_each = local.s3 ? ["s3"] : []
            content {
              destination = "secrets/s3.env"
              env         = true
              perms       = "0600"
              change_mode = "noop"
              data        = <<-EOT
                {{- with nomadVar (printf "nomad/jobs/%s" (env "NOMAD_JOB_ID")) }}
                RCLONE_CONFIG_DUMPS_ACCESS_KEY_ID={{ .s3_access_key_id.Value | toJSON }}
                RCLONE_CONFIG_DUMPS_SECRET_ACCESS_KEY={{ .s3_secret_access_key.Value | toJSON }}
                {{- end }}
              EOT
            }
          }

          template {
            destination = "local/${var.mode}.sh"
            perms       = "0755"
            data        = <<-EOT
              #!/bin/bash
              # Rendered from backup.nomad.hcl, mode ${var.mode}.
              set -euo pipefail
              umask 077
              if [[ -z $${PGPASSWORD:-} ]]; then
                echo "${var.mode}: no ${local.password_item} in the Nomad Variable nomad/jobs/$NOMAD_JOB_ID" >&2
                exit 1
              fi
              # TLS verified against the broker's CA, the server's name
              # checked against the node service's (every server certificate
              # names it) while connecting to the gateway's address, and
              # SCRAM bound to that channel: a man in the middle gets neither
              # the data nor a password it could replay.
              # HOME is the agent's (root's): libpq would fail on a client
              # certificate it may not read there (~/.postgresql). None is
              # sent; the task directory is this user's.
              export HOME="$NOMAD_TASK_DIR"
              export PGCHANNELBINDING=require PGHOSTADDR='${var.pg_host}'
              %{ if var.broker_ca != "" }
              export PGSSLMODE=verify-full PGSSLROOTCERT="$NOMAD_TASK_DIR/broker-ca.pem"
              %{ else }
              export PGSSLMODE=require
              %{ endif }
              host='pg-${var.instance}-node'
              %{ if local.s3 }
              # S3: rclone's remote "dumps" is its environment (keys from
              # secrets/s3.env).
              export RCLONE_CONFIG=/dev/null RCLONE_CONFIG_DUMPS_TYPE=s3 RCLONE_CONFIG_DUMPS_PROVIDER=Other \
                RCLONE_CONFIG_DUMPS_ENDPOINT='${var.s3_endpoint}' RCLONE_CONFIG_DUMPS_REGION='${var.s3_region}' \
                RCLONE_CONFIG_DUMPS_FORCE_PATH_STYLE=true
              # rclone 1.60 fails on AWS_CA_BUNDLE ("unsupported transport"); a
              # private CA would be named with rclone's --ca-cert instead.
              unset AWS_CA_BUNDLE
              object='dumps:${var.s3_bucket}/${var.s3_object}'
              %{ endif }
              %{ if !local.restore }
              dump() {
                "${local.bin}/pg_dump" --format=custom --host="$host" --port='${var.pg_port}' \
                  --username=pgbroker_admin --dbname='db_${var.instance}' "$@"
              }
              %{ if local.s3 }
              # Stream into a multipart upload.
              if ! dump | rclone rcat --s3-no-check-bucket --s3-chunk-size='${var.s3_part_size_mib}Mi' \
                --s3-upload-concurrency=2 --retries=1 "$object"; then
                # rclone completes the upload when pg_dump's output ends, even
                # cut short: never leave that object behind.
                rclone deletefile --retries=3 "$object" || true
                echo "dump: failed; deleted what reached ${var.s3_bucket}/${var.s3_object}" >&2
                exit 1
              fi
              echo "dump: streamed to ${var.s3_bucket}/${var.s3_object}"
              %{ else }
              dir='${local.dump_dir}'
              final="$dir/${var.backup_id}.dump"
              mkdir -p "$dir"
              dump --file="$final.partial"
              sync "$final.partial"
              mv -f -- "$final.partial" "$final"
              echo "dump: wrote $final ($(stat -c %s "$final") bytes)"
              %{ endif }
              %{ else }
              # Fail rather than wait for ever behind a session holding a lock.
              restore() {
                PGOPTIONS='-c lock_timeout=60s' "${local.bin}/pg_restore" --clean --if-exists --single-transaction --exit-on-error \
                  --use-list="$list" --no-owner ${local.acl} --role='db_${var.instance}' \
                  --host="$host" --port='${var.pg_port}' --username=pgbroker_restore \
                  --dbname='db_${var.instance}' "$@"
              }
              # Everything but the extensions' entries (see the header).
              keep() { grep -Ev '${local.extension_entries}'; }
              list="$NOMAD_TASK_DIR/restore.list"
              %{ if local.s3 }
              if [[ -z $(rclone lsf --files-only "$object") ]]; then
                echo "restore: no dump at ${var.s3_bucket}/${var.s3_object}" >&2
                exit 1
              fi
              # pg_restore reads the object as rclone streams it (twice: the
              # table of contents, then the restore); nothing is spooled.
              # pg_restore --list stops reading once it has the table of contents:
              # rclone's broken pipe there is expected, a short read fails pg_restore.
              { rclone cat "$object" 2>/dev/null || true; } | "${local.bin}/pg_restore" --list | keep >"$list"
              rclone cat "$object" | restore
              %{ else }
              dump='${local.dump}'
              "${local.bin}/pg_restore" --list "$dump" | keep >"$list"
              restore "$dump"
              %{ endif }
              echo "restore: restored backup ${var.backup_id}"
              %{ endif }
            EOT
          }

          resources {
            cpu    = 200
            memory = local.s3 && !local.restore ? 128 + 3 * var.s3_part_size_mib : 128
          }

          logs {
            max_files     = 1
            max_file_size = 1
          }
        }
      }
    }
  }
}
