package pgadmin

import "github.com/pgbroker/pgbroker/naming"

// NamesOf returns the PostgreSQL objects of instance short: database
// "db_<short>", its owner role of the same name (as in the seeds), and the
// read-only group "db_<short>_ro".
func NamesOf(short string) Names {
	db := naming.Database(short)
	return Names{Database: db, Owner: db, Reader: naming.ReaderRole(short)}
}
