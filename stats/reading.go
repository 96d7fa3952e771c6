package stats

import (
	"sync"
	"time"
)

// NodeReading is one node's container figures as its PostgreSQL server
// read them from its own control group (pgadmin.Cgroup): the source used
// when Nomad's allocation stats measure nothing. Only the node a database
// connection reaches (through the gateway: the primary) has one.
type NodeReading struct {
	AllocationID     string  // the Nomad allocation the control group belongs to
	CPUPercent       float64 // percent of one core since the previous reading of the allocation (CPUMeter); 0 at the first
	MemoryBytes      uint64  // cgroups v1 memory.usage_in_bytes, v2 memory.current
	MemoryPeakBytes  uint64  // v1 memory.max_usage_in_bytes, v2 memory.peak: highest since the allocation started
	MemoryLimitBytes uint64  // v1 memory.limit_in_bytes, v2 memory.max; 0 when unlimited
	SwapBytes        uint64  // v1 memory.stat swap, v2 memory.swap.current
	SwapLimitBytes   uint64  // v1 memsw limit less the memory limit, v2 memory.swap.max; 0 when unlimited
}

// Fill puts r's figures in the node of nodes whose allocation r names,
// when Nomad measured nothing for it; the maxima become the highest of
// what was seen and r's peak.
func Fill(nodes []Node, r *NodeReading) {
	if r == nil {
		return
	}
	for k := range nodes {
		n := &nodes[k]
		if n.AllocationID != r.AllocationID || n.Measured {
			continue
		}
		n.CPUPercent, n.MemoryBytes, n.SwapBytes = r.CPUPercent, r.MemoryBytes, r.SwapBytes
		n.MemoryMaxBytes = max(n.MemoryMaxBytes, r.MemoryPeakBytes, r.MemoryBytes)
		n.SwapMaxBytes = max(n.SwapMaxBytes, r.SwapBytes)
		if r.MemoryLimitBytes > 0 {
			n.MemoryLimitBytes = r.MemoryLimitBytes
		}
		n.SwapLimitBytes = r.SwapLimitBytes
	}
}

// CPUMeter turns readings of CPU time used (seconds) into percent of one
// core over the time between two readings of the same allocation. Safe for
// concurrent use.
type CPUMeter struct {
	mu   sync.Mutex
	last map[string]cpuReading // allocation id → last reading
}

type cpuReading struct {
	seconds float64
	at      time.Time
}

// NewCPUMeter returns a CPUMeter with no reading.
func NewCPUMeter() *CPUMeter { return &CPUMeter{last: map[string]cpuReading{}} }

// Percent records that allocation allocID had used seconds of CPU at at,
// and returns the percent of one core it used since the previous reading;
// 0 for the first, and when the total went down (processes counted before
// exited).
func (m *CPUMeter) Percent(allocID string, seconds float64, at time.Time) float64 {
	m.mu.Lock()
	defer m.mu.Unlock()
	prev, ok := m.last[allocID]
	m.last[allocID] = cpuReading{seconds, at}
	dt := at.Sub(prev.at).Seconds()
	if !ok || dt <= 0 || seconds < prev.seconds {
		return 0
	}
	return 100 * (seconds - prev.seconds) / dt
}

// Keep forgets every allocation not in running.
func (m *CPUMeter) Keep(running map[string]bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	for id := range m.last {
		if !running[id] {
			delete(m.last, id)
		}
	}
}
