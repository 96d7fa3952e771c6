// Package backends describes the sessions of an instance's users as
// PostgreSQL reports them (pg_stat_activity), for the management API's
// running queries and the dashboard.
package backends

import (
	"errors"
	"time"
)

// Backend is one session of a user of the instance, from pg_stat_activity
// (client backends only: never the broker's superuser sessions, Patroni's
// or replication).
type Backend struct {
	PID              int32      // pid
	Username         string     // usename
	Application      string     // application_name
	Client           string     // host(client_addr): the gateway's address for sessions through it; "" for a Unix socket
	State            string     // state: active, idle, idle in transaction, idle in transaction (aborted), …
	BackendStart     time.Time  // backend_start: when the session connected
	TransactionStart *time.Time // xact_start; nil outside a transaction
	QueryStart       *time.Time // query_start: start of the running query, or of the last one when idle
	Query            string     // query: the running query, or the last one when idle
}

// ErrNotFound means no session of the instance's users has the pid.
var ErrNotFound = errors.New("no session of this instance's users has that pid")

// Idle reports whether b is idle as the seeds define it (000, "Running
// Queries"): the client is neither running a query nor in a transaction
// (state "idle"; "idle in transaction" is not idle).
func (b Backend) Idle() bool { return b.State == "idle" }
