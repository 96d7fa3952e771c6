// Package naming derives the stable names of an instance's objects from OSB
// ids: the short id used in Nomad job, database and role names, binding
// roles, and dump object keys (DESIGN.md "Nomad jobs", "Credential format").
// It is a leaf: front doors and the executor both use it, and it imports
// nothing of pgbroker.
package naming

import (
	"crypto/sha256"
	"encoding/hex"
)

// AdminUser is the superuser initdb creates on every node (nomad-jobs/nodes.nomad.hcl).
const AdminUser = "pgbroker_admin"

// ShortID is the stable 12-hex-character form of an OSB instance id used in
// Nomad job names, database and role names: the first 6 bytes of its SHA-256.
func ShortID(instanceID string) string { return digest(instanceID) }

// BindingRole is the login role name of an OSB binding: "u_" and 12 hex
// characters derived from the binding id, so a retried bind finds its role.
func BindingRole(bindingID string) string { return "u_" + digest(bindingID) }

// Database is the instance's database, "db_<short>"; its owner role has the
// same name, as in the seeds.
func Database(short string) string { return "db_" + short }

// ReaderRole is the instance's read-only group role, "db_<short>_ro".
func ReaderRole(short string) string { return Database(short) + "_ro" }

// DumpKey is where a dump lives in the backup storage, relative to its root
// or bucket prefix: "<short>/<backup id>.dump".
func DumpKey(short, backupID string) string { return short + "/" + backupID + ".dump" }

func digest(s string) string {
	sum := sha256.Sum256([]byte(s))
	return hex.EncodeToString(sum[:6])
}
