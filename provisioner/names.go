package provisioner

import (
	"github.com/pgbroker/pgbroker/naming"
	"github.com/pgbroker/pgbroker/pgadmin"
)

// DatabaseNames returns the PostgreSQL objects of an instance: database
// "db_<short>", its owner role of the same name (as in the seeds), and the
// read-only group "db_<short>_ro".
func DatabaseNames(short string) pgadmin.Names {
	db := naming.Database(short)
	return pgadmin.Names{Database: db, Owner: db, Reader: naming.ReaderRole(short)}
}

// bindingSecretPrefix holds one variable per binding role.
func bindingSecretPrefix(short string) string { return "pgbroker/instances/" + short + "/bindings/" }
