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

// Dump is the HCL2 source of the batch job that writes one pg_dump -Fc of an
// instance's database to the backup directory (dump.nomad.hcl).
//
//go:embed dump.nomad.hcl
var Dump string

// Restore is the HCL2 source of the batch job that restores one dump into an
// instance's database with pg_restore --clean (restore.nomad.hcl).
//
//go:embed restore.nomad.hcl
var Restore string

// BaseBackup is the HCL2 source of the batch job that takes one full
// pgBackRest base backup of an instance's node (basebackup.nomad.hcl).
//
//go:embed basebackup.nomad.hcl
var BaseBackup string
