// Package nomadjobs holds the Nomad job files of an instance as HCL2 sources
// with variable blocks. The broker lets the Nomad server parse them
// (Jobs().ParseHCLOpts with the variables as a JSON or HCL variables file),
// then sets the job ID and name to pg-<instance>-nodes, pg-<instance>-gateways,
// pg-<instance>-cleanup, pg-<instance>-dump-<backup>,
// pg-<instance>-restore-<operation> or pg-<instance>-basebackup-<base backup>
// before registering. Each file documents its variables.
package nomadjobs

import _ "embed"

// Nodes is the HCL2 source of the database node job (nodes.nomad.hcl).
//
//go:embed nodes.nomad.hcl
var Nodes string

// Gateways is the HCL2 source of the HAProxy gateway job (gateways.nomad.hcl).
//
//go:embed gateways.nomad.hcl
var Gateways string

// Cleanup is the HCL2 source of the batch job that deletes an instance's data
// directory at deprovision (cleanup.nomad.hcl).
//
//go:embed cleanup.nomad.hcl
var Cleanup string

// Backup is the HCL2 source of the batch job that, by its variable mode,
// writes one pg_dump -Fc of an instance's database to the backup storage
// (ModeDump) or restores one into it with pg_restore --clean (ModeRestore)
// (backup.nomad.hcl).
//
//go:embed backup.nomad.hcl
var Backup string

// The values of Backup's variable mode; each also names the job's only task
// group and task.
const (
	ModeDump    = "dump"
	ModeRestore = "restore"
)

// BaseBackup is the HCL2 source of the batch job that takes one full
// pgBackRest base backup of an instance's node (basebackup.nomad.hcl).
//
//go:embed basebackup.nomad.hcl
var BaseBackup string

// Upgrade is the HCL2 source of the batch job that runs one phase (check,
// upgrade, finish) of a single-node instance's major upgrade with
// pg_upgrade on the client holding its data (upgrade.nomad.hcl).
//
//go:embed upgrade.nomad.hcl
var Upgrade string
