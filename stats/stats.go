// Package stats holds the figures of an instance the dashboard shows, with
// their units and sources: each node's container figures (Nomad allocation
// stats), the database figures (PostgreSQL's statistics views and data
// directory), the running maxima Nomad does not keep (Peaks), and the tiers
// the figures are kept in over time (Tiers). A leaf: the adapters that read
// the figures, the sampler that keeps them and the front doors that show
// them share these types.
package stats

import "time"

// Node is the container figures of one database node: the Nomad allocation
// of its task group, all tasks of the allocation together.
type Node struct {
	Name         string // task group of the node job: node-<i> (naming.Member)
	AllocationID string // the running Nomad allocation
	// CPUPercent: Nomad's AllocResourceUsage CpuStats.Percent, percent of
	// one core (100 = one core busy), over the client's last stats period.
	CPUPercent float64
	// MemoryBytes: Nomad's MemoryStats.Usage (cgroups v2 memory.current:
	// anonymous memory and page cache), falling back to RSS where Usage is
	// not measured.
	MemoryBytes uint64
	// MemoryMaxBytes: the highest MemoryBytes this broker saw since the
	// allocation started (Peaks); Nomad keeps no peak for raw_exec.
	MemoryMaxBytes uint64
	// MemoryLimitBytes: the memory Nomad allocated to the allocation's
	// tasks (AllocatedResources, MemoryMaxMB where oversubscribed), else the
	// plan's memory_mib.
	MemoryLimitBytes uint64
	SwapBytes        uint64 // MemoryStats.Swap (cgroups v2 memory.swap.current)
	SwapMaxBytes     uint64 // highest SwapBytes seen since the allocation started (Peaks)
	// SwapLimitBytes: swap the allocation may use beyond its memory; 0 when
	// unknown or unlimited (then bounded by the host's swap).
	SwapLimitBytes uint64
	// Measured: Nomad measured the allocation's memory (MemoryStats.Measured
	// is not empty). When it did not (raw_exec on cgroups v1 with cpuacct at
	// the root, as on the local stack), the figures come from a NodeReading.
	Measured bool
}

// Database is the figures of the instance's PostgreSQL, read as its
// superuser through the gateway (on a cluster: the primary).
type Database struct {
	// Connections: client backends in pg_stat_activity (backend_type
	// 'client backend'), the broker's own reading session excluded.
	Connections int
	// MaxConnections: the max_connections setting.
	MaxConnections int
	// DataSizeBytes: pg_database_size of the instance's database, the
	// logical size the database reports.
	DataSizeBytes int64
	// DiskSizeBytes: the physical space used: every file under the data
	// directory (pg_ls_dir and pg_stat_file, recursively), WAL (pg_wal),
	// shared catalogs, commit logs and tablespaces included.
	DiskSizeBytes int64
	// Node is the container figures of the node the connection reached,
	// read from its control group; nil when it names no Nomad allocation.
	Node *NodeReading
}

// Snapshot is the figures of one instance at one moment.
type Snapshot struct {
	TakenAt  time.Time
	Nodes    []Node // sorted by name; empty when no allocation runs
	Database Database
}
