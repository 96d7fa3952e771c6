package tiers

import (
	"context"
	"fmt"
	"maps"
	"slices"

	"github.com/hashicorp/nomad/api"

	"github.com/pgbroker/pgbroker/crashpoint"
	"github.com/pgbroker/pgbroker/instance"
	"github.com/pgbroker/pgbroker/naming"
)

// ToSingle moves a Business instance to a single-node size: node 0 is made
// the leader (a switchover when needed), the standbys are removed, the
// gateways go back to plain routing and to size.Gateways, and node 0
// restarts without Patroni on its data, pinned to its client, whose id is
// returned. The instance's Patroni keys, etcd user and role are deleted
// from etcd (a single node has no Patroni to log in; ToCluster makes them
// again), and the former standbys' data directories from their clients
// (removeStandbyData).
func (ch *Changer) ToSingle(ctx context.Context, in instance.Instance, size instance.Size, progress instance.Progress) (instance.Placement, error) {
	jobID := naming.NodesJobID(in.ShortID)
	cur, err := ch.nomad.Job(ctx, jobID)
	if err != nil {
		return instance.Placement{}, err
	}
	stillPatroni := cur.Meta[naming.MetaPatroni] == "true"
	node0, err := ch.jobs.AllocNode(ctx, jobID, 0)
	if err != nil {
		return instance.Placement{}, err
	}
	in.NodeID = node0
	if stillPatroni {
		c, err := ch.clusters(ctx, in.ShortID)
		if err != nil {
			return instance.Placement{}, err
		}
		if len(cur.TaskGroups) > 1 {
			if err := ch.switchoverTo(ctx, in, c, naming.Member(0), progress); err != nil {
				return instance.Placement{}, err
			}
		}
		if err := ch.asyncWhileReplacing(ctx, in, c, progress); err != nil {
			return instance.Placement{}, err
		}
		progress("removing the standbys")
		one := size
		one.Nodes = 1
		job, err := ch.jobs.NodesWith(in, one, map[string]any{"patroni": true, "etcd_hosts": ch.etcd, "node_id": node0})
		if err != nil {
			return instance.Placement{}, err
		}
		// node-0 keeps its registered definition: it leads, and restarts
		// once, below, without Patroni and on the new size.
		if err := ch.registerHolding(ctx, in, job, map[string]bool{naming.Member(0): true}, one, c, progress); err != nil {
			return instance.Placement{}, err
		}
		if err := ch.waitAllocsGone(ctx, jobID, 1); err != nil {
			return instance.Placement{}, err
		}
		crashpoint.Hit("tiers:standbys-removed")
		progress("routing the gateway to the single node")
		gateways, err := ch.jobs.Gateways(in, size)
		if err != nil {
			return instance.Placement{}, err
		}
		version, err := ch.nomad.Register(ctx, gateways)
		if err != nil {
			return instance.Placement{}, err
		}
		if _, err := ch.nomad.WaitRunning(ctx, naming.GatewaysJobID(in.ShortID), version, size.Gateways, "haproxy", "gateway", progress); err != nil {
			return instance.Placement{}, err
		}
	}
	progress("restarting node 0 without Patroni")
	if err := ch.registerNodes(ctx, in, size, nil, progress); err != nil {
		return instance.Placement{}, err
	}
	if err := ch.DeletePatroniKeys(ctx, in.ShortID); err != nil {
		return instance.Placement{}, err
	}
	if err := ch.removeStandbyData(ctx, in.ShortID, progress); err != nil {
		return instance.Placement{}, err
	}
	return instance.Placement{NodeID: node0}, ch.readyThroughGateway(ctx, in, progress)
}

// waitAllocsGone waits until at most n allocations of the job still run.
func (ch *Changer) waitAllocsGone(ctx context.Context, jobID string, n int) error {
	var index uint64
	for {
		allocs, next, err := ch.nomad.AllocationsAfter(ctx, jobID, index)
		if err != nil {
			return err
		}
		index = next
		alive := 0
		for _, a := range allocs {
			if a.ClientStatus == api.AllocClientStatusRunning || a.ClientStatus == api.AllocClientStatusPending {
				alive++
			}
		}
		if alive <= n {
			return nil
		}
		if ctx.Err() != nil {
			return fmt.Errorf("waiting for the standbys to stop: %w", ctx.Err())
		}
	}
}

// removeStandbyData deletes the data directories of the node job's former
// standbys (every task group but node-0, none of them running any more) on
// each client that ran one, so that a standby added later clones the leader
// afresh: a copy left behind may lack WAL long recycled on the leader, or
// have diverged from it (a point-in-time restore). Idempotent.
func (ch *Changer) removeStandbyData(ctx context.Context, short string, progress instance.Progress) error {
	jobID := naming.NodesJobID(short)
	allocs, err := ch.nomad.Allocations(ctx, jobID, true)
	if err != nil {
		return err
	}
	groups := map[string][]string{} // client -> task groups
	for _, a := range allocs {
		if a.TaskGroup == naming.Member(0) {
			continue
		}
		if a.ClientStatus == api.AllocClientStatusRunning || a.ClientStatus == api.AllocClientStatusPending {
			return fmt.Errorf("node %s of %s still runs", a.TaskGroup, jobID)
		}
		if !slices.Contains(groups[a.NodeID], a.TaskGroup) {
			groups[a.NodeID] = append(groups[a.NodeID], a.TaskGroup)
		}
	}
	if len(groups) > 0 {
		progress("deleting the former standbys' data")
	}
	for _, client := range slices.Sorted(maps.Keys(groups)) {
		if err := ch.jobs.CleanData(ctx, short, client, groups[client]); err != nil {
			return err
		}
	}
	return nil
}
