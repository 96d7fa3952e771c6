# The broker itself as a Nomad service job (README "Deploying"):
#
#   nomad var put nomad/jobs/pgbroker PGBROKER_USERNAME=broker PGBROKER_PASSWORD=... \
#     DATABASE_URL=postgres://... NOMAD_TOKEN=... PGBROKER_SECRETS_KEY=$(head -c32 /dev/urandom | base64)
#   nomad job run -var data_root=/srv/pgbroker/data deploy/pgbroker.nomad.hcl
#
# Secrets never appear here: the task reads them from the Nomad Variable
# nomad/jobs/<job id> (readable by this job's tasks only), rendered into
# secrets/ as environment. Each item of that Variable named like a setting
# (PGBROKER_*, DATABASE_URL, NOMAD_TOKEN) becomes that variable; other
# items are ignored. Required there: PGBROKER_USERNAME, PGBROKER_PASSWORD,
# DATABASE_URL (the state database), PGBROKER_SECRETS_KEY (keep a copy
# outside Nomad too: a Nomad that lost its state lost this Variable), and
# NOMAD_TOKEN when ACLs are on. S3
# keys go there too (PGBROKER_BACKUP_S3_ACCESS_KEY_ID, ..._SECRET_ACCESS_KEY,
# PGBROKER_PITR_S3_...), and etcd's root password with etcd_endpoints
# (PGBROKER_ETCD_PASSWORD), and so may any setting the variables below leave
# out (PGBROKER_HOST_NETWORK, PGBROKER_GATEWAY_PORTS, CA files...).
#
# One broker at a time (count 1): operations go through the durable queue
# in the state database, so a replacement picks up where the last one
# stopped. The binary is the one `make build` writes (bin/pgbroker),
# installed on the clients at var.binary; raw_exec runs it, the profile the
# tests run.

variable "datacenters" {
  type    = list(string)
  default = ["*"]
}

variable "binary" {
  type        = string
  default     = "/usr/local/bin/pgbroker"
  description = "Absolute path of the pgbroker binary on the clients."
}

variable "user" {
  type        = string
  default     = "pgbroker-backup"
  description = "User the broker runs as: never root, nor postgres (which runs every instance and could read the broker's Nomad token from its environment). With the filesystem backup storage it reads and deletes the dumps that dump jobs write as PGBROKER_BACKUP_USER (pgbroker-backup), so it is that user; with S3 storage any unprivileged user will do."
}

variable "port" {
  type        = number
  default     = 8080
  description = "Static port of the OSB and management APIs (the URL platforms register)."
}

variable "host_network" {
  type        = string
  default     = "default"
  description = "Nomad host network the broker's port binds to."
}

variable "nomad_addr" {
  type        = string
  default     = "http://127.0.0.1:4646"
  description = "Nomad HTTP API the broker drives (the local client agent forwards to the servers)."
}

variable "data_root" {
  type        = string
  description = "PGBROKER_DATA_ROOT: directory on every client holding instances' data directories."
  validation {
    condition     = substr(var.data_root, 0, 1) == "/"
    error_message = "The data_root must be an absolute path."
  }
}

variable "nomad_driver" {
  type        = string
  default     = "raw_exec"
  description = "PGBROKER_NOMAD_DRIVER: the profile of the instances' jobs."
}

variable "broker_name" {
  type        = string
  default     = "pgbroker"
  description = "PGBROKER_BROKER_NAME: this deployment's name (orphan sweeps only touch jobs carrying it)."
}

variable "etcd_endpoints" {
  type        = list(string)
  default     = []
  description = "PGBROKER_ETCD_ENDPOINTS (host:port): etcd for Patroni, over TLS with authentication on; empty refuses Business plans."
}

variable "etcd_ca_file" {
  type        = string
  default     = ""
  description = "PGBROKER_ETCD_CA_FILE: path on the clients of the PEM CA etcd's server certificate chains to (required with etcd_endpoints; the root password goes in the Variable as PGBROKER_ETCD_PASSWORD)."
}

variable "public_host" {
  type        = string
  default     = ""
  description = "PGBROKER_PUBLIC_HOST: host put in credentials; empty: the gateway's Nomad address."
}

variable "backup_s3_endpoint" {
  type        = string
  default     = ""
  description = "PGBROKER_BACKUP_S3_ENDPOINT: dumps in S3 (keys in the Variable); needed when the clients share no backup directory."
}

variable "backup_s3_bucket" {
  type    = string
  default = ""
}

variable "memory_mib" {
  type    = number
  default = 256
}

job "pgbroker" {
  type        = "service"
  datacenters = var.datacenters

  group "broker" {
    count = 1

    network {
      port "http" {
        static       = var.port
        host_network = var.host_network
      }
    }

    service {
      name     = "pgbroker"
      provider = "nomad"
      port     = "http"

      check {
        type     = "http"
        path     = "/healthz"
        interval = "10s"
        timeout  = "2s"
      }
    }

    task "pgbroker" {
      driver = "raw_exec"
      user   = var.user

      config {
        command = var.binary
      }

      env {
        PGBROKER_LISTEN             = "${NOMAD_ADDR_http}"
        PGBROKER_NOMAD_ADDR         = var.nomad_addr
        PGBROKER_DATA_ROOT          = var.data_root
        PGBROKER_NOMAD_DRIVER       = var.nomad_driver
        PGBROKER_BROKER_NAME        = var.broker_name
        PGBROKER_ETCD_ENDPOINTS     = join(",", var.etcd_endpoints)
        PGBROKER_ETCD_CA_FILE       = var.etcd_ca_file
        PGBROKER_PUBLIC_HOST        = var.public_host
        PGBROKER_BACKUP_S3_ENDPOINT = var.backup_s3_endpoint
        PGBROKER_BACKUP_S3_BUCKET   = var.backup_s3_bucket
        PGBROKER_SHUTDOWN_TIMEOUT   = "25s"
      }

      # The Variable's items as environment, values JSON-quoted (Nomad's env
      # file parser reads JSON escapes). Only setting names pass, so whoever
      # may write the Variable cannot set LD_PRELOAD or PATH.
      template {
        destination = "secrets/pgbroker.env"
        env         = true
        perms       = "0600"
        change_mode = "restart"
        data        = <<-EOT
          {{- with nomadVar (printf "nomad/jobs/%s" (env "NOMAD_JOB_ID")) }}
          {{- range .Tuples }}
          {{- if .K | regexMatch "^(PGBROKER_[A-Z0-9_]+|DATABASE_URL|NOMAD_TOKEN)$" }}
          {{ .K }}={{ .V | toJSON }}
          {{- end }}
          {{- end }}
          {{- end }}
        EOT
      }

      # PGBROKER_SHUTDOWN_TIMEOUT and a margin, within the clients' default
      # max_kill_timeout (30s).
      kill_timeout = "30s"

      resources {
        cpu    = 500
        memory = var.memory_mib
      }
    }
  }
}
