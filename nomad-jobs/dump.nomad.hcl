# One logical dump of an instance's database: pg_dump -Fc through the
# instance's gateway, written to the backup directory on the client as
# <backup_dir>/<instance>/<backup_id>.dump (first as .partial, renamed once
# complete, so a file under the final name is always a whole dump). With
# s3_endpoint set, pg_dump's output streams instead straight into s3_object of
# s3_bucket as a multipart upload (rclone rcat, parts of s3_part_size_mib,
# credentials from the job's variable): nothing is spooled on the client, and
# the object may grow to 10,000 parts. A failed dump deletes what it uploaded.
#
# The broker parses this file with the variables below, sets the job ID and
# name to pg-<instance>-dump-<backup_id>, and puts the instance's admin
# password in the Nomad Variable nomad/jobs/<that job ID> (item
# admin_password) before registering it; it purges the job and deletes the
# variable once the dump is recorded. Pinned to the instance's node (node_id).

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
  description = "Id of the backup: names the dump file."
  validation {
    condition     = regex_replace(var.backup_id, "^[a-z0-9][a-z0-9-]{0,63}$", "ok") == "ok"
    error_message = "The backup_id must be 1 to 64 lower-case letters, digits and dashes."
  }
}

variable "driver" {
  type        = string
  default     = "raw_exec"
  description = "Task driver profile: raw_exec (Debian's pg_dump) or docker (postgres image)."
  validation {
    condition     = contains(["raw_exec", "docker"], var.driver)
    error_message = "The driver must be raw_exec or docker."
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
  description = "Address of the instance's gateway."
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
  description = "Part size of the multipart upload in MiB (S3 allows 5 to 5120). The dump may grow to 10,000 parts; the task holds about three parts in memory."
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
  s3     = var.s3_endpoint != ""
  docker       = var.driver == "docker"
  instance_dir = "${var.backup_dir}/${var.instance}"
  bin          = var.postgres_bin_dir
}

job "pg-dump" {
  type        = "batch"
  datacenters = var.datacenters

  dynamic "constraint" {
    for_each = var.node_id == "" ? [] : [var.node_id]
    content {
      attribute = "${node.unique.id}"
      value     = constraint.value
    }
  }

  group "dump" {
    count = 1

    restart {
      attempts = 1
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

    task "dump" {
      driver = var.driver

      dynamic "config" {
        for_each = local.docker ? [] : ["raw_exec"]
        content {
          command = "/bin/bash"
          args    = ["${NOMAD_TASK_DIR}/dump.sh"]
        }
      }

      dynamic "config" {
        for_each = local.docker ? ["docker"] : []
        content {
          image        = var.postgres_image
          network_mode = "host"
          command      = "/bin/bash"
          args         = ["${NOMAD_TASK_DIR}/dump.sh"]
          volumes      = ["${var.backup_dir}:${var.backup_dir}"]
        }
      }

      # The admin password reaches pg_dump as PGPASSWORD, rendered by the
      # client from this job's own variable; never in the job spec.
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

      # S3 credentials of rclone's remote "dumps" (its RCLONE_CONFIG_<remote>_*
      # environment), from this job's own variable: never on a command line.
      dynamic "template" {
        for_each = var.s3_endpoint == "" ? [] : ["s3"]
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
        destination = "local/dump.sh"
        perms       = "0755"
        data        = <<-EOT
          #!/bin/bash
          # Rendered from dump.nomad.hcl.
          set -euo pipefail
          umask 077
          if [[ -z $${PGPASSWORD:-} ]]; then
            echo "dump: no admin_password in the Nomad Variable nomad/jobs/$NOMAD_JOB_ID" >&2
            exit 1
          fi
          dump() {
            "${local.bin}/pg_dump" --format=custom --host='${var.pg_host}' --port='${var.pg_port}' \
              --username=pgbroker_admin --dbname='db_${var.instance}' "$@"
          }
          %{ if local.s3 }
          # S3: stream into a multipart upload; rclone's remote "dumps" is
          # its environment (keys from secrets/s3.env).
          export RCLONE_CONFIG=/dev/null RCLONE_CONFIG_DUMPS_TYPE=s3 RCLONE_CONFIG_DUMPS_PROVIDER=Other \
            RCLONE_CONFIG_DUMPS_ENDPOINT='${var.s3_endpoint}' RCLONE_CONFIG_DUMPS_REGION='${var.s3_region}' \
            RCLONE_CONFIG_DUMPS_FORCE_PATH_STYLE=true
          # rclone 1.60 fails on AWS_CA_BUNDLE ("unsupported transport"); a
          # private CA would be named with rclone's --ca-cert instead.
          unset AWS_CA_BUNDLE
          object='dumps:${var.s3_bucket}/${var.s3_object}'
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
          dir='${local.instance_dir}'
          final="$dir/${var.backup_id}.dump"
          mkdir -p "$dir"
          dump --file="$final.partial"
          sync "$final.partial"
          mv -f -- "$final.partial" "$final"
          echo "dump: wrote $final ($(stat -c %s "$final") bytes)"
          %{ endif }
        EOT
      }

      resources {
        cpu    = 200
        memory = local.s3 ? 128 + 3 * var.s3_part_size_mib : 128
      }

      logs {
        max_files     = 1
        max_file_size = 1
      }
    }
  }
}
