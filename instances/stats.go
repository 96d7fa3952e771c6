package instances

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/pgbroker/pgbroker/naming"
	"github.com/pgbroker/pgbroker/nomad"
	"github.com/pgbroker/pgbroker/stats"
	"github.com/pgbroker/pgbroker/store"
)

// Allocations is what the container figures need of Nomad (nomad.Cluster).
type Allocations interface {
	RunningAllocations(ctx context.Context, jobPattern string) ([]nomad.RunningAllocation, error)
	AllocationUsage(ctx context.Context, allocID string) (nomad.AllocationUsage, error)
}

// usageReaders bounds the allocation stats requests in flight at once.
const usageReaders = 8

// WithAllocations makes s read container figures from n, keeping their
// peaks in peaks (shared with the sampler, so both see one maximum).
func (s *Service) WithAllocations(n Allocations, peaks *stats.Peaks) *Service {
	s.allocs, s.peaks = n, peaks
	return s
}

// Stats returns the current figures of i: each node's container figures
// (the memory limit falling back to the plan's memory) and its database's.
// Errors: Nomad's or PostgreSQL's, naming which.
func (s *Service) Stats(ctx context.Context, i store.Instance) (stats.Snapshot, error) {
	job := naming.NodesJobID(i.ShortID)
	nodes, _, err := s.containers(ctx, "^"+regexp.QuoteMeta(job)+"$", map[string]bool{job: true})
	if err != nil {
		return stats.Snapshot{}, err
	}
	_, plan, _ := s.cat.Plan(i.PlanID)
	for k := range nodes[job] {
		if nodes[job][k].MemoryLimitBytes == 0 {
			nodes[job][k].MemoryLimitBytes = uint64(plan.MemoryMiB) << 20
		}
	}
	db, err := s.DatabaseStats(ctx, i)
	if err != nil {
		return stats.Snapshot{}, err
	}
	stats.Fill(nodes[job], db.Node)
	return stats.Snapshot{TakenAt: time.Now().UTC(), Nodes: nodes[job], Database: db}, nil
}

// AllContainers returns the container figures of every running node
// allocation of the instances insts, by node job id, from one allocation
// list and one stats request per allocation (allocations of other brokers'
// instances on the same Nomad are not asked). An allocation whose stats
// cannot be read is left out and its error joined into err, beside the
// figures of the others.
func (s *Service) AllContainers(ctx context.Context, insts []store.Instance) (map[string][]stats.Node, error) {
	jobs := make(map[string]bool, len(insts))
	for _, in := range insts {
		jobs[naming.NodesJobID(in.ShortID)] = true
	}
	out, running, err := s.containers(ctx, "^pg-.*-nodes$", jobs)
	if running != nil {
		s.peaks.Keep(running) // the peaks and CPU readings of stopped allocations go
		s.cpu.Keep(running)
	}
	return out, err
}

// containers returns the figures of the running allocations of the jobs
// matching pattern that are in jobs, by job id, each job's nodes sorted by
// name, and the ids of those allocations.
func (s *Service) containers(ctx context.Context, pattern string, jobs map[string]bool) (map[string][]stats.Node, map[string]bool, error) {
	if s.allocs == nil {
		return nil, nil, errors.New("container figures are not wired: no Nomad allocations reader")
	}
	listed, err := s.allocs.RunningAllocations(ctx, pattern)
	if err != nil {
		return nil, nil, err
	}
	allocs := slices.DeleteFunc(listed, func(a nomad.RunningAllocation) bool { return !jobs[a.JobID] })
	nodes := make([]stats.Node, len(allocs))
	errs := make([]error, len(allocs))
	var wg sync.WaitGroup
	sem := make(chan struct{}, usageReaders)
	for k, a := range allocs {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer func() { <-sem; wg.Done() }()
			nodes[k], errs[k] = s.node(ctx, a)
		}()
	}
	wg.Wait()
	out := map[string][]stats.Node{}
	for k, a := range allocs {
		if errs[k] == nil {
			out[a.JobID] = append(out[a.JobID], nodes[k])
		}
	}
	for _, ns := range out {
		slices.SortFunc(ns, func(a, b stats.Node) int { return strings.Compare(a.Name, b.Name) })
	}
	running := make(map[string]bool, len(allocs))
	for _, a := range allocs {
		running[a.ID] = true
	}
	return out, running, errors.Join(errs...)
}

// node reads one allocation's usage and raises its peaks.
func (s *Service) node(ctx context.Context, a nomad.RunningAllocation) (stats.Node, error) {
	u, err := s.allocs.AllocationUsage(ctx, a.ID)
	if err != nil {
		return stats.Node{}, err
	}
	n := stats.Node{Name: a.TaskGroup, AllocationID: a.ID, CPUPercent: u.CPUPercent, MemoryBytes: u.MemoryBytes,
		MemoryLimitBytes: a.MemoryLimitBytes, SwapBytes: u.SwapBytes, Measured: len(u.Measured) > 0}
	s.peaks.Observe(&n)
	return n, nil
}

// DatabaseStats reads i's database figures as its superuser, through its
// gateway, with the container figures of the node it reached (its control
// group, the CPU as percent since the previous reading). Errors: the Variable, the gateway's address, PostgreSQL's.
func (s *Service) DatabaseStats(ctx context.Context, i store.Instance) (stats.Database, error) {
	a, n, err := s.admin(ctx, i)
	if err != nil {
		return stats.Database{}, err
	}
	d, err := a.Stats(ctx, n)
	if err != nil {
		return stats.Database{}, fmt.Errorf("read the database figures: %w", err)
	}
	out := stats.Database{Connections: d.Connections, MaxConnections: d.MaxConnections,
		DataSizeBytes: d.DataSizeBytes, DiskSizeBytes: d.DiskSizeBytes}
	if c := d.Cgroup; c != nil {
		out.Node = &stats.NodeReading{AllocationID: c.AllocationID, CPUPercent: s.cpu.Percent(c.AllocationID, c.CPUSeconds, time.Now()),
			MemoryBytes: c.MemoryBytes, MemoryPeakBytes: c.MemoryPeakBytes, MemoryLimitBytes: c.MemoryLimitBytes,
			SwapBytes: c.SwapBytes, SwapLimitBytes: c.SwapLimitBytes}
	}
	return out, nil
}
