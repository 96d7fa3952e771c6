# One full pgBackRest base backup of an instance: stanza-create (when the
# stanza is missing), backup --type=full, then `info --output=json` of the
# stanza as the task's only standard output, from which the broker reads the
# new backup's label. Everything else pgBackRest says goes to standard error.
#
# Runs on the Nomad client of the node to back up (node_id: the Starter
# node, a streaming Business standby, or a lone Patroni leader), as user postgres, next to that
# node's PostgreSQL: pgBackRest reaches it through its Unix socket in
# <data_root>/<instance>/run-<node_index> (or /run/postgresql when that path
# is too long for a socket, the rule nodes.nomad.hcl follows) and reads its
# data directory <data_root>/<instance>/node-<node_index>. The repository is
# the posix directory pitr_repo, or with pitr_s3_endpoint set the S3 bucket
# pitr_s3_bucket (pitr_repo its path in the bucket; the keys, items
# pitr_s3_key and pitr_s3_key_secret of the job's Nomad Variable, reach
# pgBackRest as PGBACKREST_REPO1_S3_KEY[_SECRET] from secrets/pg.env); the
# stanza is named after the instance.
#
# The broker parses this file with the variables below, sets the job ID and
# name to pg-<instance>-basebackup-<base backup id>, and puts the instance's
# admin password in the Nomad Variable nomad/jobs/<that job ID> (item
# admin_password) before registering it; it purges the job and deletes the
# variable once the label is read. Backups of one instance on one client share
# the lock directory <data_root>/<instance>/lock: pgBackRest runs one at a time.

variable "instance" {
  type        = string
  description = "Short, stable instance id (12 hex characters from the broker); names the stanza."
  validation {
    condition     = regex_replace(var.instance, "^[a-z0-9]([a-z0-9-]{0,30}[a-z0-9])?$", "ok") == "ok"
    error_message = "The instance must be 1 to 32 lower-case letters, digits and inner dashes."
  }
}

variable "driver" {
  type        = string
  default     = "raw_exec"
  description = "Task driver profile: raw_exec (Debian's pgbackrest) or docker (postgres_image, which must hold pgbackrest)."
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
  default     = ""
  description = "The Nomad client node ID to run on: the client of the node to back up."
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
  description = "Alloc index of the node to back up: names its data and socket directories."
}

variable "pg_port" {
  type        = number
  description = "PostgreSQL port of the node to back up (the socket is named after it)."
}

variable "pitr_repo" {
  type        = string
  description = "Absolute directory on the client of the pgBackRest repository (the same on every client)."
  validation {
    condition     = substr(var.pitr_repo, 0, 1) == "/" && var.pitr_repo != "/" && regex_replace(var.pitr_repo, "/\\.\\.?(/|$)", "") == var.pitr_repo
    error_message = "The pitr_repo must be an absolute path without . or .. segments."
  }
}

variable "pitr_s3_endpoint" {
  type        = string
  default     = ""
  description = "Host name or IPv4 address of the S3-compatible endpoint of the repository; empty: the repository is the directory pitr_repo."
  validation {
    condition     = regex_replace(var.pitr_s3_endpoint, "^([A-Za-z0-9]([A-Za-z0-9.-]{0,251}[A-Za-z0-9])?)?$", "") == ""
    error_message = "The pitr_s3_endpoint must be empty or a host name or IPv4 address."
  }
}

variable "pitr_s3_port" {
  type    = number
  default = 443
}

variable "pitr_s3_bucket" {
  type    = string
  default = ""
  validation {
    condition     = regex_replace(var.pitr_s3_bucket, "^([a-z0-9][a-z0-9.-]{1,61}[a-z0-9])?$", "") == ""
    error_message = "The pitr_s3_bucket must be empty or an S3 bucket name."
  }
}

variable "pitr_s3_region" {
  type    = string
  default = "us-east-1"
  validation {
    condition     = regex_replace(var.pitr_s3_region, "^[A-Za-z0-9_-]{1,64}$", "") == ""
    error_message = "The pitr_s3_region must be 1 to 64 letters, digits, dashes and underscores."
  }
}

variable "pitr_s3_ca" {
  type        = string
  default     = ""
  description = "PEM certificates the endpoint's certificate chains to; empty: the system's CAs."
  validation {
    condition     = regex_replace(var.pitr_s3_ca, "^[A-Za-z0-9+/=\\s-]*$", "") == ""
    error_message = "The pitr_s3_ca must hold PEM certificates only."
  }
}

# Business instances: the base backup is taken from a standby (pgBackRest
# backup-standby). node_* and pg_port then name the standby, on whose client
# the job runs and whose files it copies; primary_host set names the
# primary, whose pgBackRest TLS server (nodes.nomad.hcl, task "pgbackrest")
# runs pg_backup_start/stop there. The job authenticates with the client
# certificate of its Variable (items pgbackrest_client_certificate and
# pgbackrest_client_private_key, CN pgbroker-basebackup-<instance>) and
# trusts broker_ca for the server's.
variable "primary_host" {
  type        = string
  default     = ""
  description = "Address of the primary's pgBackRest TLS server; empty: back up the node itself (Starter, or a lone leader)."
  validation {
    condition     = regex_replace(var.primary_host, "^([A-Za-z0-9]([A-Za-z0-9.:-]{0,251}[A-Za-z0-9])?)?$", "") == ""
    error_message = "The primary_host must be empty or a host name or IP address."
  }
}

variable "primary_pgbackrest_port" {
  type    = number
  default = 0
}

variable "primary_node_index" {
  type    = number
  default = 0
}

variable "primary_pg_port" {
  type    = number
  default = 0
}

variable "broker_ca" {
  type        = string
  default     = ""
  description = "With primary_host: PEM of the broker's CA, which signs the primary's pgBackRest server certificate."
  validation {
    condition     = regex_replace(var.broker_ca, "^[A-Za-z0-9+/=\\s-]*$", "") == ""
    error_message = "The broker_ca must hold PEM certificates only."
  }
}

variable "postgres_uid" {
  type        = number
  default     = 999
  description = "Numeric uid of user postgres on the client: owns the rendered client key."
}

variable "postgres_gid" {
  type    = number
  default = 999
}

variable "postgres_image" {
  type    = string
  default = "postgres:15"
}

locals {
  s3           = var.pitr_s3_endpoint != ""
  docker       = var.driver == "docker"
  instance_dir = "${var.data_root}/${var.instance}"
  run_dir      = "${local.instance_dir}/run-${var.node_index}"
  # A Unix socket path is at most 107 bytes; "/.s.PGSQL.<port>" adds up to 17.
  socket_dir = strlen(local.run_dir) + 17 > 107 ? "/run/postgresql" : local.run_dir
  standby    = var.primary_host != ""
  # The primary's socket directory on its own client, by the same rule.
  primary_run_dir    = "${local.instance_dir}/run-${var.primary_node_index}"
  primary_socket_dir = strlen(local.primary_run_dir) + 17 > 107 ? "/run/postgresql" : local.primary_run_dir
}

job "pg-basebackup" {
  type        = "batch"
  datacenters = var.datacenters

  dynamic "constraint" {
    for_each = var.node_id == "" ? [] : [var.node_id]
    content {
      attribute = "${node.unique.id}"
      value     = constraint.value
    }
  }

  group "basebackup" {
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

    task "basebackup" {
      driver = var.driver
      user   = "postgres"

      dynamic "config" {
        for_each = local.docker ? [] : ["raw_exec"]
        content {
          command = "/bin/bash"
          args    = ["${NOMAD_TASK_DIR}/basebackup.sh"]
        }
      }

      dynamic "config" {
        for_each = local.docker ? ["docker"] : []
        content {
          image        = var.postgres_image
          network_mode = "host"
          command      = "/bin/bash"
          args         = ["${NOMAD_TASK_DIR}/basebackup.sh"]
          volumes = distinct(concat(["${var.data_root}:${var.data_root}", "${local.socket_dir}:${local.socket_dir}"],
          local.s3 ? [] : ["${var.pitr_repo}:${var.pitr_repo}"]))
        }
      }

      # The admin password reaches libpq as PGPASSWORD, rendered by the client
      # from this job's own variable; never in the job spec.
      template {
        destination = "secrets/pg.env"
        env         = true
        perms       = "0600"
        change_mode = "noop"
        data        = <<-EOT
          {{- with nomadVar (printf "nomad/jobs/%s" (env "NOMAD_JOB_ID")) }}
          PGPASSWORD={{ .admin_password.Value | toJSON }}
          %{ if local.s3 }
          PGBACKREST_REPO1_S3_KEY={{ .pitr_s3_key.Value | toJSON }}
          PGBACKREST_REPO1_S3_KEY_SECRET={{ .pitr_s3_key_secret.Value | toJSON }}
          %{ endif }
          {{- end }}
        EOT
      }

      # The node's own pgbackrest.conf with this node's paths (retention
      # included: backup expires what is older).
      template {
        destination = "local/pgbackrest.conf"
        data        = <<-EOT
          [global]
          repo1-path=${var.pitr_repo}
          %{ if local.s3 }
          repo1-type=s3
          repo1-s3-endpoint=${var.pitr_s3_endpoint}
          repo1-storage-port=${var.pitr_s3_port}
          repo1-s3-bucket=${var.pitr_s3_bucket}
          repo1-s3-region=${var.pitr_s3_region}
          repo1-s3-uri-style=path
          %{ if var.pitr_s3_ca != "" }
          repo1-storage-ca-file={{ env "NOMAD_TASK_DIR" }}/pitr-s3-ca.pem
          %{ endif }
          %{ endif }
          repo1-retention-full-type=time
          repo1-retention-full=7
          lock-path=${local.instance_dir}/lock
          log-path={{ env "NOMAD_TASK_DIR" }}
          log-level-console=off
          log-level-stderr=warn
          log-level-file=off
          start-fast=y
          %{ if local.standby }
          backup-standby=y
          %{ endif }

          [${var.instance}]
          %{ if local.standby }
          pg1-host=${var.primary_host}
          pg1-host-type=tls
          pg1-host-port=${var.primary_pgbackrest_port}
          pg1-host-ca-file={{ env "NOMAD_TASK_DIR" }}/broker-ca.pem
          pg1-host-cert-file={{ env "NOMAD_SECRETS_DIR" }}/client.pem
          pg1-host-key-file={{ env "NOMAD_SECRETS_DIR" }}/client.pem
          pg1-path=${local.instance_dir}/node-${var.primary_node_index}
          pg1-port=${var.primary_pg_port}
          pg1-socket-path=${local.primary_socket_dir}
          pg1-user=pgbroker_admin
          pg2-path=${local.instance_dir}/node-${var.node_index}
          pg2-port=${var.pg_port}
          pg2-socket-path=${local.socket_dir}
          pg2-user=pgbroker_admin
          %{ else }
          pg1-path=${local.instance_dir}/node-${var.node_index}
          pg1-port=${var.pg_port}
          pg1-socket-path=${local.socket_dir}
          pg1-user=pgbroker_admin
          %{ endif }
        EOT
      }

      dynamic "template" {
        for_each = local.standby ? ["client"] : []
        content {
          destination = "secrets/client.pem"
          perms       = "0600"
          uid         = var.postgres_uid
          gid         = var.postgres_gid
          data        = <<-EOT
            {{- with nomadVar (printf "nomad/jobs/%s" (env "NOMAD_JOB_ID")) }}
            {{- .pgbackrest_client_certificate.Value }}
            {{- .pgbackrest_client_private_key.Value }}
            {{- end }}
          EOT
        }
      }

      dynamic "template" {
        for_each = local.standby ? ["broker-ca"] : []
        content {
          destination = "local/broker-ca.pem"
          data        = var.broker_ca
        }
      }

      dynamic "template" {
        for_each = var.pitr_s3_ca != "" ? ["pitr-s3-ca"] : []
        content {
          destination = "local/pitr-s3-ca.pem"
          data        = var.pitr_s3_ca
        }
      }

      template {
        destination = "local/basebackup.sh"
        perms       = "0755"
        data        = <<-EOT
          #!/bin/bash
          # Rendered from basebackup.nomad.hcl.
          set -euo pipefail
          umask 077
          if [[ -z $${PGPASSWORD:-} ]]; then
            echo "basebackup: no admin_password in the Nomad Variable nomad/jobs/$NOMAD_JOB_ID" >&2
            exit 1
          fi
          c=(--config="$NOMAD_TASK_DIR/pgbackrest.conf" --stanza='${var.instance}')
          pgbackrest "$${c[@]}" stanza-create >&2
          pgbackrest "$${c[@]}" --type=full backup >&2
          pgbackrest "$${c[@]}" --output=json info
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
