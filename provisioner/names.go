package provisioner

import (
	"crypto/sha256"
	"encoding/hex"

	"github.com/pgbroker/pgbroker/pgadmin"
)

// AdminUser is the superuser initdb creates on every node (nomad-jobs/nodes.nomad.hcl).
const AdminUser = "pgbroker_admin"

// ShortID is the stable 12-hex-character form of an OSB instance id used in
// Nomad job names, database and role names (DESIGN.md "Nomad jobs").
func ShortID(instanceID string) string { return digest(instanceID) }

// BindingRole is the login role name of an OSB binding: "u_" and 12 hex
// characters derived from the binding id, so a retried bind finds its role.
func BindingRole(bindingID string) string { return "u_" + digest(bindingID) }

func digest(s string) string {
	sum := sha256.Sum256([]byte(s))
	return hex.EncodeToString(sum[:6])
}

// NodesJobID, GatewaysJobID and CleanupJobID name an instance's Nomad jobs.
func NodesJobID(short string) string    { return "pg-" + short + "-nodes" }
func GatewaysJobID(short string) string { return "pg-" + short + "-gateways" }
func CleanupJobID(short string) string  { return "pg-" + short + "-cleanup" }

// GatewayService is the Nomad service the gateways register.
func GatewayService(short string) string { return "pg-" + short + "-gateway" }

// DatabaseNames returns the PostgreSQL objects of an instance: database
// "db_<short>", its owner role of the same name (as in the seeds), and the
// read-only group "db_<short>_ro".
func DatabaseNames(short string) pgadmin.Names {
	db := "db_" + short
	return pgadmin.Names{Database: db, Owner: db, Reader: db + "_ro"}
}

// nodesSecretPath holds the admin and replication passwords; Nomad lets the
// node job's tasks read it (nomad/jobs/<job>).
func nodesSecretPath(short string) string { return "nomad/jobs/" + NodesJobID(short) }

// bindingSecretPrefix holds one variable per binding role.
func bindingSecretPrefix(short string) string { return "pgbroker/instances/" + short + "/bindings/" }
