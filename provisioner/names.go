package provisioner

import (
	"github.com/pgbroker/pgbroker/naming"
	"github.com/pgbroker/pgbroker/pgadmin"
)

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
	db := naming.Database(short)
	return pgadmin.Names{Database: db, Owner: db, Reader: naming.ReaderRole(short)}
}

// nodesSecretPath holds the admin and replication passwords; Nomad lets the
// node job's tasks read it (nomad/jobs/<job>).
func nodesSecretPath(short string) string { return "nomad/jobs/" + NodesJobID(short) }

// bindingSecretPrefix holds one variable per binding role.
func bindingSecretPrefix(short string) string { return "pgbroker/instances/" + short + "/bindings/" }
