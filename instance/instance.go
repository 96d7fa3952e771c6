// Package instance holds what the executor knows of one instance (Instance)
// and of the shape its plan gives its Nomad jobs (Size), and the two values
// every step returns or reports (Placement, Progress). A leaf: the
// provisioner and the packages it orchestrates (tiers, pitr, instancejobs,
// adminconn) share these types without importing one another.
package instance

import "time"

// Instance is what the executor needs to know of an instance.
type Instance struct {
	ShortID      string // naming.ShortID of the instance id
	GatewayPort  int    // static gateway port
	ReadOnlyPort int    // static port of the gateways' read-only listener (plans with standbys); 0: none
	NodeID       string // Nomad node holding the data directory; "" before first placement
	// GatewayNodeID pins a single-node instance's gateway job to this Nomad
	// node; "" leaves it to the scheduler. A provision pins the gateway where
	// it was placed, once certified; a repair, to its former client (issue 17).
	GatewayNodeID string
	// NodeClients pins each node of a plan with standbys, by index (task
	// group node-<index>), to the Nomad node holding its data directory;
	// nil (or an empty entry) leaves placement to the scheduler and Patroni
	// clones a node placed anew. Only a repair sets it (package reconcile).
	NodeClients []string

	ForceTLS   bool     // pg_hba.conf allows TLS connections only
	Extensions []string // extensions the broker manages in the instance's database (extensions.Contrib names)

	// PostgresVersion is the PostgreSQL version the nodes run, "15.18"
	// (pgversion); its binaries come from the configured directory of that
	// version. "" runs the job files' default binaries.
	PostgresVersion string
}

// Size is the part of a plan that shapes the jobs (catalog.Plan).
type Size struct {
	MemoryMiB      int
	CPUMHz         int
	Nodes          int
	Gateways       int
	MaxConnections int
	// AutovacuumNaptime is PostgreSQL's autovacuum_naptime, whole
	// seconds; 0 leaves PostgreSQL's default (1 min).
	AutovacuumNaptime time.Duration
	PITRDays          int // point-in-time recovery window in days; 0: no WAL archiving
}

// HA reports whether the plan has standbys: its nodes run under Patroni and
// its gateways route to the leader.
func (s Size) HA() bool { return s.Nodes > 1 }

// Progress receives the current step of an operation, in words a user reads
// in last_operation ("starting node 1 of 1").
type Progress func(step string)

// Placement is where an instance's data lives once provisioned.
type Placement struct {
	NodeID string // Nomad node id of the first node allocation
	// NodeClients is, for plans with standbys, the Nomad node id of each
	// node's allocation by node index; nil for a single node.
	NodeClients []string
}
