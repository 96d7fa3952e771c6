package stats

import "sync"

// Peaks keeps the running maximum of memory and swap per allocation, since
// the allocation was first seen by this broker: Nomad reports no peak for
// raw_exec tasks. It lives in memory, so it starts over when the broker
// restarts. Safe for concurrent use.
type Peaks struct {
	mu   sync.Mutex
	seen map[string]peak // allocation id → maxima
}

type peak struct{ memory, swap uint64 }

// NewPeaks returns an empty Peaks.
func NewPeaks() *Peaks { return &Peaks{seen: map[string]peak{}} }

// Observe raises the maxima of n's allocation to n's figures and sets
// n.MemoryMaxBytes and n.SwapMaxBytes to them.
func (p *Peaks) Observe(n *Node) {
	p.mu.Lock()
	defer p.mu.Unlock()
	m := p.seen[n.AllocationID]
	m.memory, m.swap = max(m.memory, n.MemoryBytes), max(m.swap, n.SwapBytes)
	p.seen[n.AllocationID] = m
	n.MemoryMaxBytes, n.SwapMaxBytes = m.memory, m.swap
}

// Keep forgets every allocation not in running, so the map stays as small
// as the set of running allocations.
func (p *Peaks) Keep(running map[string]bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for id := range p.seen {
		if !running[id] {
			delete(p.seen, id)
		}
	}
}

// Len is the number of allocations tracked.
func (p *Peaks) Len() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.seen)
}
