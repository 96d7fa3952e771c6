package nomad

import (
	"context"
	"fmt"
	"strconv"

	"github.com/hashicorp/nomad/api"
)

// RunningAllocation is a running allocation of a job, with the memory Nomad
// gave it.
type RunningAllocation struct {
	ID        string
	JobID     string
	TaskGroup string
	// MemoryLimitBytes: the sum over its tasks of AllocatedResources
	// Memory.MemoryMaxMB (oversubscription) or MemoryMB, in bytes; 0 when
	// Nomad did not say.
	MemoryLimitBytes uint64
}

// RunningAllocations lists the running allocations (client status running)
// of every job whose id matches the regular expression jobPattern (Nomad's
// filter syntax, e.g. "^pg-.*-nodes$"), in one request.
func (n *Cluster) RunningAllocations(ctx context.Context, jobPattern string) ([]RunningAllocation, error) {
	q := queryOpts(ctx)
	q.Filter = `ClientStatus == "running" and JobID matches ` + strconv.Quote(jobPattern)
	q.Params = map[string]string{"resources": "true", "task_states": "false"}
	stubs, _, err := n.c.Allocations().List(q)
	if err != nil {
		return nil, fmt.Errorf("list running allocations of jobs %s in Nomad: %w", jobPattern, err)
	}
	out := make([]RunningAllocation, 0, len(stubs))
	for _, s := range stubs {
		out = append(out, RunningAllocation{ID: s.ID, JobID: s.JobID, TaskGroup: s.TaskGroup, MemoryLimitBytes: memoryLimit(s.AllocatedResources)})
	}
	return out, nil
}

func memoryLimit(r *api.AllocatedResources) uint64 {
	if r == nil {
		return 0
	}
	var mib int64
	for _, t := range r.Tasks {
		mib += max(t.Memory.MemoryMB, t.Memory.MemoryMaxMB)
	}
	return uint64(mib) << 20
}

// AllocationUsage is an allocation's resource usage as its Nomad client
// measured it last (api.AllocResourceUsage, all tasks together).
type AllocationUsage struct {
	CPUPercent  float64  // CpuStats.Percent: percent of one core
	MemoryBytes uint64   // MemoryStats.Usage, or RSS when Usage is not measured
	SwapBytes   uint64   // MemoryStats.Swap
	Measured    []string // MemoryStats.Measured: the memory fields the client's driver measures
}

// AllocationUsage reads the resource usage of allocation allocID from its
// Nomad client (/v1/client/allocation/:id/stats, through the server).
// Errors: IsNotFound when the allocation is gone; others name it.
func (n *Cluster) AllocationUsage(ctx context.Context, allocID string) (AllocationUsage, error) {
	u, err := n.c.Allocations().Stats(&api.Allocation{ID: allocID}, queryOpts(ctx))
	if err != nil {
		return AllocationUsage{}, fmt.Errorf("read the resource usage of allocation %s from Nomad: %w", shortAlloc(allocID), err)
	}
	var out AllocationUsage
	if u.ResourceUsage == nil {
		return out, nil
	}
	if c := u.ResourceUsage.CpuStats; c != nil {
		out.CPUPercent = c.Percent
	}
	if m := u.ResourceUsage.MemoryStats; m != nil {
		out.MemoryBytes, out.SwapBytes, out.Measured = m.Usage, m.Swap, m.Measured
		if out.MemoryBytes == 0 {
			out.MemoryBytes = m.RSS
		}
	}
	return out, nil
}
