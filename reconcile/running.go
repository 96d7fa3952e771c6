package reconcile

import (
	"context"
	"fmt"

	"github.com/hashicorp/nomad/api"

	"github.com/pgbroker/pgbroker/naming"
	"github.com/pgbroker/pgbroker/provisioner"
)

// gatewayGroup is the gateway job's one task group (nomad-jobs/gateways.nomad.hcl),
// of size.Gateways allocations.
const gatewayGroup = "gateway"

// notRunning lists, for the jobs of instance short that Nomad holds
// registered and not stopped (f.NodesJob, f.GatewaysJob ""), the task groups
// short of running allocations (client status running, desired status run):
// "node-1 not running", "gateway 1 of 2 running". Nomad restarts and
// reschedules allocations itself; an allocation that stays down (a client
// gone, a pinned group that cannot place) is what this finds. Errors:
// Nomad's.
func (r *Reconciler) notRunning(ctx context.Context, short string, size provisioner.Size, f Finding) ([]string, error) {
	var out []string
	if f.NodesJob == "" {
		running, err := r.runningByGroup(ctx, naming.NodesJobID(short))
		if err != nil {
			return nil, err
		}
		for i := range size.Nodes {
			if g := naming.Member(i); running[g] == 0 {
				out = append(out, g+" not running")
			}
		}
	}
	if f.GatewaysJob == "" && size.Gateways > 0 {
		running, err := r.runningByGroup(ctx, naming.GatewaysJobID(short))
		if err != nil {
			return nil, err
		}
		switch n := running[gatewayGroup]; {
		case n == 0 && size.Gateways == 1:
			out = append(out, "gateway not running")
		case n < size.Gateways:
			out = append(out, fmt.Sprintf("gateway %d of %d running", n, size.Gateways))
		}
	}
	return out, nil
}

// runningByGroup counts the running allocations of jobID by task group.
func (r *Reconciler) runningByGroup(ctx context.Context, jobID string) (map[string]int, error) {
	allocs, err := r.d.Nomad.Allocations(ctx, jobID, false)
	if err != nil {
		return nil, fmt.Errorf("list the allocations of %s: %w", jobID, err)
	}
	out := map[string]int{}
	for _, a := range allocs {
		if a.ClientStatus == api.AllocClientStatusRunning && a.DesiredStatus == api.AllocDesiredStatusRun {
			out[a.TaskGroup]++
		}
	}
	return out, nil
}
