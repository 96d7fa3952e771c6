package provisioner

import "github.com/pgbroker/pgbroker/nomad"

// JobFailedError: a batch job's allocation failed; running it again would
// fail the same way (nomad.JobFailedError).
type JobFailedError = nomad.JobFailedError

// ExecError: a command run in the node task exited non-zero
// (nomad.ExecError).
type ExecError = nomad.ExecError
