# Deletes an instance's data directory, <data_root>/<instance>, from a client,
# and its pgBackRest stanza when pitr_repo is set (no point-in-time restore
# of a deprovisioned instance is offered).
# The broker runs it at deprovision once the node job is stopped, waits for
# the allocation to complete, then purges the job (ID pg-<instance>-cleanup).
# Set node_id to the client that held the data when there are several.
# Runs as postgres, never root: postgres owns the data root, the data
# directories and the pgBackRest repository, and rm cannot follow a link
# anywhere postgres itself could not write.
#
# With node_groups set it deletes only those nodes' data directories,
# <data_root>/<instance>/<group> (e.g. node-1), and keeps the stanza: the
# broker removes a Business instance's former standbys' data this way once
# they stopped (a later standby clones the leader afresh instead of starting
# on a stale or diverged copy).

variable "instance" {
  type        = string
  description = "Short, stable instance id (12 hex characters from the broker)."
  # Part of the path deleted below: no slashes, no dots.
  validation {
    condition     = regex_replace(var.instance, "^[a-z0-9]([a-z0-9-]{0,30}[a-z0-9])?$", "ok") == "ok"
    error_message = "The instance must be 1 to 32 lower-case letters, digits and inner dashes."
  }
}

variable "driver" {
  type        = string
  default     = "raw_exec"
  description = "Task driver profile: raw_exec (host rm) or docker (data_root mounted into the postgres image)."
  validation {
    condition     = contains(["raw_exec", "docker"], var.driver)
    error_message = "The driver must be raw_exec or docker."
  }
}

variable "datacenters" {
  type    = list(string)
  default = ["*"]
}

variable "data_root" {
  type        = string
  description = "Absolute host directory holding instance data (the nodes job's data_root)."
  validation {
    condition     = substr(var.data_root, 0, 1) == "/" && var.data_root != "/" && regex_replace(var.data_root, "/\\.\\.?(/|$)", "") == var.data_root
    error_message = "The data_root must be an absolute path without . or .. segments."
  }
}

variable "pitr_repo" {
  type        = string
  default     = ""
  description = "When set, the pgBackRest repository whose stanza <instance> (archive and base backups) is deleted too."
  validation {
    condition     = var.pitr_repo == "" || (substr(var.pitr_repo, 0, 1) == "/" && var.pitr_repo != "/" && regex_replace(var.pitr_repo, "/\\.\\.?(/|$)", "") == var.pitr_repo)
    error_message = "The pitr_repo must be empty or an absolute path without . or .. segments."
  }
}

variable "node_id" {
  type        = string
  default     = ""
  description = "When set, the Nomad client node ID to clean."
}

variable "node_groups" {
  type        = list(string)
  default     = []
  description = "When set, the node task groups (node-<index>) whose data directories alone are deleted."
  validation {
    condition     = length([for g in var.node_groups : g if regex_replace(g, "^node-[0-9]{1,3}$", "ok") != "ok"]) == 0
    error_message = "Each node_groups entry must be node-<index>."
  }
}

variable "postgres_image" {
  type        = string
  default     = "postgres:15"
  description = "Image for the docker profile; the nodes already have it."
}

locals {
  docker       = var.driver == "docker"
  instance_dir = "${var.data_root}/${var.instance}"
  stanza_dirs  = var.pitr_repo == "" ? [] : ["${var.pitr_repo}/archive/${var.instance}", "${var.pitr_repo}/backup/${var.instance}"]
  rm_targets   = length(var.node_groups) > 0 ? [for g in var.node_groups : "${local.instance_dir}/${g}"] : concat([local.instance_dir], local.stanza_dirs)
  rm_args      = concat(["-rf", "--one-file-system", "--"], local.rm_targets)
}

job "pg-cleanup" {
  type        = "batch"
  datacenters = var.datacenters

  dynamic "constraint" {
    for_each = var.node_id == "" ? [] : [var.node_id]
    content {
      attribute = "${node.unique.id}"
      value     = constraint.value
    }
  }

  group "cleanup" {
    count = 1

    restart {
      attempts = 2
      interval = "1m"
      delay    = "1s"
      mode     = "fail"
    }

    reschedule {
      attempts  = 0
      unlimited = false
    }

    ephemeral_disk {
      size = 10
    }

    task "cleanup" {
      driver = var.driver
      # The docker image has the same user (uid 999).
      user = "postgres"

      dynamic "config" {
        for_each = local.docker ? [] : ["raw_exec"]
        content {
          command = "/bin/rm"
          args    = local.rm_args
        }
      }

      dynamic "config" {
        for_each = local.docker ? ["docker"] : []
        content {
          image      = var.postgres_image
          entrypoint = ["rm"]
          args       = local.rm_args
          volumes    = ["${var.data_root}:${var.data_root}"]
        }
      }

      resources {
        cpu    = 100
        memory = 32
      }

      logs {
        max_files     = 1
        max_file_size = 1
      }
    }
  }
}
