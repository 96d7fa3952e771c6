package provisioner

import (
	"context"
	"fmt"
	"maps"
	"slices"

	"github.com/hashicorp/nomad/api"

	"github.com/pgbroker/pgbroker/crashpoint"
	"github.com/pgbroker/pgbroker/naming"
	"github.com/pgbroker/pgbroker/patroni"
)

// toCluster moves a single-node instance to a Business size, its node's data
// kept (the seeds: Starter to Business "migrate seamlessly"): node 0 restarts
// under Patroni, which adopts its data directory and leads (pinned to the
// client holding it); the gateways switch to routing by Patroni and become
// size.Gateways; then the standbys are added, clone the leader and stream
// synchronously. Writes pause while node 0 restarts and while the first
// gateway is replaced (sticky: same client, same address).
func (p *Provisioner) toCluster(ctx context.Context, in Instance, size Size, progress Progress) error {
	if _, _, err := p.certs.EnsureServer(ctx, in.ShortID, p.certs.Hosts(in.ShortID)); err != nil {
		return err
	}
	secrets, err := p.conn.EnsureSecret(ctx, naming.NodesSecretPath(in.ShortID), "admin_password", "replication_password")
	if err != nil {
		return err
	}
	cur, err := p.nomad.Job(ctx, naming.NodesJobID(in.ShortID))
	if err != nil {
		return err
	}
	// Resumed once the standbys were added, Patroni has adopted node 0
	// already: registering it alone again would stop the standbys.
	if cur.Meta[MetaPatroni] != "true" || len(cur.TaskGroups) < 2 {
		if err := p.adoptNode0(ctx, in, size, progress); err != nil {
			return err
		}
	}
	crashpoint.Hit("tiers:adopted")
	progress("routing the gateways by Patroni")
	if err := p.gatewaysToCluster(ctx, in, size, progress); err != nil {
		return err
	}
	admin, err := p.conn.Admin(ctx, in, secrets["admin_password"])
	if err != nil {
		return err
	}
	if err := p.conn.WaitReady(ctx, admin, progress); err != nil {
		return err
	}
	if err := admin.EnsureReplicationRole(ctx, secrets["replication_password"]); err != nil {
		return fmt.Errorf("replication role: %w", err)
	}
	progress("adding the standbys")
	if err := p.registerNodes(ctx, in, size, nil, progress); err != nil {
		return err
	}
	if err := p.waitStandbys(ctx, admin, secrets["replication_password"], size.Nodes-1, progress); err != nil {
		return err
	}
	if err := p.waitHealthy(ctx, in.ShortID, size.Nodes-1, progress); err != nil {
		return err
	}
	if err := p.jobs.EnsureStanza(ctx, in, size, progress); err != nil {
		return err
	}
	return p.readyThroughGateway(ctx, in, progress)
}

// adoptNode0 restarts node 0 alone under Patroni, pinned to its client, and
// waits until Patroni has adopted its data directory and it leads.
func (p *Provisioner) adoptNode0(ctx context.Context, in Instance, size Size, progress Progress) error {
	one := size
	one.Nodes = 1
	progress("restarting node 0 under Patroni")
	if err := p.registerNodes(ctx, in, one, map[string]any{"patroni": true, "etcd_hosts": p.cfg.Etcd, "node_id": in.NodeID}, progress); err != nil {
		return err
	}
	c, err := p.clusters(ctx, in.ShortID)
	if err != nil {
		return err
	}
	_, err = c.WaitMembers(ctx, "waiting for Patroni to adopt node 0", patroni.Leads(naming.Member(0)), progress)
	return err
}

// gatewaysToCluster makes the single-node gateway route by Patroni, then
// adds the others up to size.Gateways. The first step replaces the one
// gateway alone, so its sticky disk brings it back to its client and the
// address in the credentials keeps working; registered together with the
// new ones, a new gateway could take that client first and push the
// replacement (distinct_hosts) to another. A gateway job already scaled
// past one (a resumed operation) goes straight to the second step.
func (p *Provisioner) gatewaysToCluster(ctx context.Context, in Instance, size Size, progress Progress) error {
	jobID := naming.GatewaysJobID(in.ShortID)
	cur, err := p.nomad.Job(ctx, jobID)
	if err != nil {
		return err
	}
	steps := []Size{size}
	if len(cur.TaskGroups) == 1 && cur.TaskGroups[0].Count != nil && *cur.TaskGroups[0].Count <= 1 && size.Gateways > 1 {
		first := size
		first.Gateways = 1
		steps = []Size{first, size}
	}
	for _, s := range steps {
		job, err := p.jobs.Gateways(in, s)
		if err != nil {
			return err
		}
		version, err := p.nomad.Register(ctx, job)
		if err != nil {
			return err
		}
		if _, err := p.nomad.WaitRunning(ctx, jobID, version, s.Gateways, "haproxy", "gateway", progress); err != nil {
			return err
		}
	}
	return nil
}

// toSingle moves a Business instance to a single-node size: node 0 is made
// the leader (a switchover when needed), the standbys are removed, the
// gateways go back to plain routing and to size.Gateways, and node 0
// restarts without Patroni on its data, pinned to its client, whose id is
// returned. The instance's Patroni keys are deleted from etcd, and the
// former standbys' data directories from their clients (removeStandbyData).
func (p *Provisioner) toSingle(ctx context.Context, in Instance, size Size, progress Progress) (Placement, error) {
	jobID := naming.NodesJobID(in.ShortID)
	cur, err := p.nomad.Job(ctx, jobID)
	if err != nil {
		return Placement{}, err
	}
	stillPatroni := cur.Meta[MetaPatroni] == "true"
	node0, err := p.jobs.AllocNode(ctx, jobID, 0)
	if err != nil {
		return Placement{}, err
	}
	in.NodeID = node0
	if stillPatroni {
		c, err := p.clusters(ctx, in.ShortID)
		if err != nil {
			return Placement{}, err
		}
		if len(cur.TaskGroups) > 1 {
			if err := p.switchoverTo(ctx, in, c, naming.Member(0), progress); err != nil {
				return Placement{}, err
			}
		}
		if err := p.asyncWhileReplacing(ctx, in, c, progress); err != nil {
			return Placement{}, err
		}
		progress("removing the standbys")
		one := size
		one.Nodes = 1
		job, err := p.jobs.NodesWith(in, one, map[string]any{"patroni": true, "etcd_hosts": p.cfg.Etcd, "node_id": node0})
		if err != nil {
			return Placement{}, err
		}
		// node-0 keeps its registered definition: it leads, and restarts
		// once, below, without Patroni and on the new size.
		if err := p.registerHolding(ctx, in, job, map[string]bool{naming.Member(0): true}, one, c, progress); err != nil {
			return Placement{}, err
		}
		if err := p.waitAllocsGone(ctx, jobID, 1); err != nil {
			return Placement{}, err
		}
		crashpoint.Hit("tiers:standbys-removed")
		progress("routing the gateway to the single node")
		gateways, err := p.jobs.Gateways(in, size)
		if err != nil {
			return Placement{}, err
		}
		version, err := p.nomad.Register(ctx, gateways)
		if err != nil {
			return Placement{}, err
		}
		if _, err := p.nomad.WaitRunning(ctx, naming.GatewaysJobID(in.ShortID), version, size.Gateways, "haproxy", "gateway", progress); err != nil {
			return Placement{}, err
		}
	}
	progress("restarting node 0 without Patroni")
	if err := p.registerNodes(ctx, in, size, nil, progress); err != nil {
		return Placement{}, err
	}
	if err := p.deletePatroniKeys(ctx, in.ShortID); err != nil {
		return Placement{}, err
	}
	if err := p.removeStandbyData(ctx, in.ShortID, progress); err != nil {
		return Placement{}, err
	}
	return Placement{NodeID: node0}, p.readyThroughGateway(ctx, in, progress)
}

// registerNodes registers the node job for size with extra variables and
// waits for its allocations of the new version.
func (p *Provisioner) registerNodes(ctx context.Context, in Instance, size Size, extra map[string]any, progress Progress) error {
	if err := p.jobs.EnsurePITRKeys(ctx, in.ShortID); err != nil {
		return err
	}
	job, err := p.jobs.NodesWith(in, size, extra)
	if err != nil {
		return err
	}
	version, err := p.nomad.Register(ctx, job)
	if err != nil {
		return err
	}
	_, err = p.nomad.WaitRunning(ctx, naming.NodesJobID(in.ShortID), version, size.Nodes, "postgres", "node", progress)
	return err
}

// waitAllocsGone waits until at most n allocations of the job still run.
func (p *Provisioner) waitAllocsGone(ctx context.Context, jobID string, n int) error {
	var index uint64
	for {
		allocs, next, err := p.nomad.AllocationsAfter(ctx, jobID, index)
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
func (p *Provisioner) removeStandbyData(ctx context.Context, short string, progress Progress) error {
	jobID := naming.NodesJobID(short)
	allocs, err := p.nomad.Allocations(ctx, jobID, true)
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
		if err := p.jobs.CleanData(ctx, short, client, groups[client]); err != nil {
			return err
		}
	}
	return nil
}
