// Package deploy holds what runs the broker itself: the Nomad job file
// pgbroker.nomad.hcl, the Nomad ACL policy of its token
// (nomad-acl-policy.hcl), and the example variables of the Cloud Foundry manifest
// (manifest.yml, at the repository root where cf push looks for it). Its
// tests validate both against the broker's configuration and a real Nomad.
package deploy

import _ "embed"

// NomadJob is the HCL2 source of the Nomad job that runs the broker
// (pgbroker.nomad.hcl); its variables are documented in the file.
//
//go:embed pgbroker.nomad.hcl
var NomadJob string

// NomadACLPolicy is the Nomad ACL policy of the broker's token
// (nomad-acl-policy.hcl): the capabilities pgbroker uses, in the default
// namespace and the Variables under nomad/jobs/pg-* and pgbroker/*.
//
//go:embed nomad-acl-policy.hcl
var NomadACLPolicy string
