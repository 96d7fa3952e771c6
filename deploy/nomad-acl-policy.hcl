# Nomad ACL policy of the broker's token (NOMAD_TOKEN): what pgbroker needs
# and nothing more. Load it and make the token:
#
#   nomad acl policy apply -description "pgbroker" pgbroker deploy/nomad-acl-policy.hcl
#   nomad acl token create -name pgbroker -policy pgbroker -type client
#
# Every job the broker runs is in the default namespace and named pg-*.
# No node, agent, operator, quota or ACL rights: the broker reads client
# nodes only through its allocations. acceptance/nomadacl_test.go runs a
# Starter instance's whole life (provision, bind, dump, restore,
# deprovision) on an ACL-enabled agent with a token holding only this
# policy, and checks that the token is refused what it need not do.

namespace "default" {
  capabilities = [
    # List, read and register the instance's jobs (nodes, gateways, dump,
    # restore, base backup, cleanup), plan and validate them, deregister
    # and purge them; read their allocations, evaluations, versions and
    # the service registrations gateways and nodes make.
    "list-jobs",
    "read-job",
    "submit-job",
    # Jobs().ParseHCLOpts: the broker lets the server parse the job files.
    "parse-job",
    # Stop or restart one allocation (a gateway whose rendered
    # configuration fell behind, a standby during a plan change).
    "alloc-lifecycle",
    # Read a task's rendered files (nomad alloc fs): the gateway watcher
    # compares a gateway's rendered HAProxy configuration with the nodes.
    "read-fs",
    # Run SQL administration and pgBackRest in a node's allocation (nomad
    # alloc exec). raw_exec tasks have no isolation, so Nomad asks for
    # alloc-node-exec as well as alloc-exec.
    "alloc-exec",
    "alloc-node-exec",
  ]

  variables {
    # Each job's secrets (passwords, S3 keys), which its tasks read through
    # their workload identity.
    path "nomad/jobs/pg-*" {
      capabilities = ["write", "read", "destroy", "list"]
    }
    # The broker's own: its CA (pgbroker/<PGBROKER_BROKER_NAME>/ca) and
    # each instance's binding passwords (pgbroker/instances/<id>/...).
    path "pgbroker/*" {
      capabilities = ["write", "read", "destroy", "list"]
    }
  }
}
