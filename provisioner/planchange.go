package provisioner

import (
	"context"
	"fmt"
	"time"

	"github.com/hashicorp/nomad/api"

	"github.com/pgbroker/pgbroker/crashpoint"
)

// ChangePlan moves a provisioned instance from plan size from to size to,
// keeping its data, gateway port and DATABASE_URL (issue #5 "Plan changes
// across tiers"):
//   - single node to single node: Resize (the node restarts on its data);
//   - Business to Business: rollCluster (standbys first, one switchover,
//     then the old leader);
//   - single node to Business: toCluster (Patroni adopts the node, the
//     gateways route by Patroni, a standby clones it);
//   - Business to single node: toSingle (node-0 leads, the standbys go,
//     the node runs without Patroni).
//
// It returns where the data now lives (Placement.NodeID "" when unchanged).
// Every step is idempotent: after a crash, running it again finishes it.
func (p *Provisioner) ChangePlan(ctx context.Context, in Instance, from, to Size, progress Progress) (Placement, error) {
	switch {
	case !from.HA() && !to.HA():
		return Placement{}, p.Resize(ctx, in, to, progress)
	case from.HA() && to.HA():
		return Placement{}, p.rollCluster(ctx, in, to, progress)
	case to.HA():
		return Placement{}, p.toCluster(ctx, in, to, progress)
	default:
		return p.toSingle(ctx, in, to, progress)
	}
}

// memberName is Patroni's name of the node with alloc index i.
func memberName(i int) string { return fmt.Sprintf("node-%d", i) }

// rollCluster replaces a Business instance's nodes with size's, one at a
// time and the leader last, at the cost of one switchover: Nomad replaces a
// group's allocations in alloc-index order (scheduler/reconciler
// computeDestructiveUpdates, nameOrder), so the leader is first moved to the
// highest index when it is elsewhere (a switchover more), the deployment is
// paused after the standbys' replacements are placed, the leader is switched
// over to node-0 once those stream, and the deployment resumes to replace
// the old leader, which comes back as a standby.
func (p *Provisioner) rollCluster(ctx context.Context, in Instance, size Size, progress Progress) error {
	c, err := p.patroni(ctx, in.ShortID)
	if err != nil {
		return err
	}
	standbys := size.Nodes - 1
	// Synchronous or not: a crash may have left synchronous_mode off.
	if _, err := c.waitMembers(ctx, "waiting for a healthy cluster", func(m []Member) bool { return streamingTo(m, standbys) }, progress); err != nil {
		return err
	}
	if err := c.setParameters(ctx, map[string]any{"max_connections": size.MaxConnections}); err != nil {
		return err
	}
	if err := p.ensurePITRKeys(ctx, in.ShortID); err != nil {
		return err
	}
	job, err := p.NodesJob(in, size)
	if err != nil {
		return err
	}
	jobID := NodesJobID(in.ShortID)
	changed, err := p.jobChanges(ctx, job)
	if err != nil {
		return err
	}
	last := memberName(size.Nodes - 1)
	if changed {
		if err := p.switchoverTo(ctx, in, c, last, standbys, progress); err != nil {
			return err
		}
		if err := p.asyncWhileReplacing(ctx, in, c, progress); err != nil {
			return err
		}
		progress("registering the new node job")
		if _, err := p.register(ctx, job); err != nil {
			return err
		}
		crashpoint.Hit("update:registered")
	}
	cur, _, err := p.nomad.Jobs().Info(jobID, queryOpts(ctx))
	if err != nil {
		return fmt.Errorf("read job %s from Nomad: %w", jobID, err)
	}
	version := *cur.Version
	dep, err := p.deploymentOf(ctx, jobID, version)
	if err != nil {
		return err
	}
	// With more than one standby Nomad rolls them all before the leader
	// (index order) without a pause; the leader's replacement then hands
	// over through Patroni's shutdown instead of a switchover.
	if standbys > 1 {
		dep = nil
	}
	if dep != nil && dep.Status == api.DeploymentStatusRunning {
		if _, _, err := p.nomad.Deployments().Pause(dep.ID, true, writeOpts(ctx)); err != nil {
			return fmt.Errorf("pause deployment %s: %w", shortAlloc(dep.ID), err)
		}
	}
	if dep != nil && (dep.Status == api.DeploymentStatusRunning || dep.Status == api.DeploymentStatusPaused) {
		progress(fmt.Sprintf("replacing the standbys (%d)", standbys))
		if _, err := p.runningAllocs(ctx, jobID, version, standbys, "postgres", "standby", progress); err != nil {
			return err
		}
		if err := p.switchoverTo(ctx, in, c, memberName(0), standbys, progress); err != nil {
			return err
		}
		progress("replacing the former leader")
		if _, _, err := p.nomad.Deployments().Pause(dep.ID, false, writeOpts(ctx)); err != nil {
			return fmt.Errorf("resume deployment %s: %w", shortAlloc(dep.ID), err)
		}
	}
	if _, err := p.runningAllocs(ctx, jobID, version, size.Nodes, "postgres", "node", progress); err != nil {
		return err
	}
	if _, err := c.waitMembers(ctx, "waiting for the standbys to stream", func(m []Member) bool { return streamingTo(m, standbys) }, progress); err != nil {
		return err
	}
	if err := p.restoreSync(ctx, c, standbys, progress); err != nil {
		return err
	}
	return p.readyThroughGateway(ctx, in, progress)
}

// switchoverTo makes member name the leader unless it leads already: it
// waits until name is the synchronous standby (Patroni refuses a switchover
// to another in synchronous mode) or, with synchronous_mode off, a running
// standby, switches over, and waits until name leads.
func (p *Provisioner) switchoverTo(ctx context.Context, in Instance, c *patroniClient, name string, standbys int, progress Progress) error {
	sync, err := c.synchronousMode(ctx)
	if err != nil {
		return err
	}
	want := "the synchronous standby"
	if !sync {
		want = "a running standby"
	}
	members, err := c.waitMembers(ctx, "waiting for "+name+" to be "+want+" or the leader", func(m []Member) bool {
		for _, x := range m {
			switch {
			case x.Name != name:
			case x.Role == "leader" && x.State == "running", x.Role == "sync_standby":
				return true
			case !sync && x.Role == "replica" && (x.State == "streaming" || x.State == "running"):
				return true
			}
		}
		return false
	}, progress)
	if err != nil {
		return err
	}
	leader := leaderOf(members)
	if leader == name {
		return nil
	}
	progress(fmt.Sprintf("switching over from %s to %s", leader, name))
	// A checkpoint now leaves little for the demoted leader's shutdown
	// checkpoint, the longest part of a switchover's pause in writes.
	if err := p.checkpoint(ctx, in); err != nil {
		return err
	}
	var from Member
	for _, m := range members {
		if m.Name == leader {
			from = m
		}
	}
	if err := c.switchover(ctx, from, name); err != nil {
		return err
	}
	_, err = c.waitMembers(ctx, "waiting for "+name+" to lead", func(m []Member) bool { return leaderOf(m) == name }, progress)
	return err
}

// checkpoint runs CHECKPOINT on the leader (through the gateway).
func (p *Provisioner) checkpoint(ctx context.Context, in Instance) error {
	password, err := p.readSecret(ctx, nodesSecretPath(in.ShortID), "admin_password")
	if err != nil {
		return err
	}
	admin, err := p.admin(ctx, in, password)
	if err != nil {
		return err
	}
	return admin.Checkpoint(ctx)
}

// jobChanges reports whether registering job would make a new version.
func (p *Provisioner) jobChanges(ctx context.Context, job *api.Job) (bool, error) {
	plan, _, err := p.nomad.Jobs().PlanOpts(job, &api.PlanOptions{Diff: true}, writeOpts(ctx))
	if err != nil {
		return false, fmt.Errorf("plan job %s with Nomad: %w", *job.ID, err)
	}
	return plan.Diff == nil || plan.Diff.Type != "None", nil
}

// deploymentOf returns the deployment of the job's version, waiting up to
// 10 s for Nomad to create it; nil when there is none (nothing to replace).
func (p *Provisioner) deploymentOf(ctx context.Context, jobID string, version uint64) (*api.Deployment, error) {
	deadline := time.Now().Add(10 * time.Second)
	for {
		dep, _, err := p.nomad.Jobs().LatestDeployment(jobID, queryOpts(ctx))
		if err != nil {
			return nil, fmt.Errorf("read the deployment of %s from Nomad: %w", jobID, err)
		}
		if dep != nil && dep.JobVersion == version {
			return dep, nil
		}
		if time.Now().After(deadline) {
			return nil, nil
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// readyThroughGateway waits until PostgreSQL answers through the gateways and
// serves a certificate naming them.
func (p *Provisioner) readyThroughGateway(ctx context.Context, in Instance, progress Progress) error {
	password, err := p.readSecret(ctx, nodesSecretPath(in.ShortID), "admin_password")
	if err != nil {
		return err
	}
	admin, err := p.admin(ctx, in, password)
	if err != nil {
		return err
	}
	if err := p.waitReady(ctx, admin, progress); err != nil {
		return err
	}
	return p.certifyGateway(ctx, in, admin, progress)
}
