package tiers

import (
	"context"

	"github.com/hashicorp/nomad/api"

	"github.com/pgbroker/pgbroker/crashpoint"
	"github.com/pgbroker/pgbroker/instance"
	"github.com/pgbroker/pgbroker/naming"
	"github.com/pgbroker/pgbroker/patroni"
)

// Roll replaces a Business instance's nodes with size's one at a
// time, the standbys first and the leader last, at the cost of one
// switchover (issue #5 "Rolling changes"). Each node is its own task group,
// so the broker picks the order: it registers versions in which the groups
// not yet due keep their registered definition (Nomad then updates them in
// place, without a restart). Synchronous replication is off while a node
// restarts and back on once it streams (replaceAsync), so no commit waits
// for a standby being stopped, and the switchover runs in synchronous mode
// (to the synchronous standby). After a crash the groups still to replace and the leader are
// read again, so running it again finishes the change without a second
// switchover.
func (ch *Changer) Roll(ctx context.Context, in instance.Instance, size instance.Size, progress instance.Progress) error {
	c, err := ch.clusters(ctx, in.ShortID)
	if err != nil {
		return err
	}
	standbys := size.Nodes - 1
	// Synchronous or not: a crash may have left synchronous_mode off.
	members, err := c.WaitMembers(ctx, "waiting for a healthy cluster", patroni.Streaming(standbys), progress)
	if err != nil {
		return err
	}
	if err := c.SetParameters(ctx, map[string]any{"max_connections": size.MaxConnections}); err != nil {
		return err
	}
	if err := ch.jobs.EnsurePITRKeys(ctx, in.ShortID); err != nil {
		return err
	}
	// An instance made before etcd had users gets its own with its next plan change.
	if err := ch.EnsureEtcdUser(ctx, in.ShortID); err != nil {
		return err
	}
	job, err := ch.jobs.Nodes(in, size)
	if err != nil {
		return err
	}
	stale, err := ch.staleGroups(ctx, job)
	if err != nil {
		return err
	}
	leader := patroni.Leader(members)
	leaderStale := stale[leader]
	for i := 0; i < size.Nodes; i++ {
		name := naming.Member(i)
		if !stale[name] || name == leader {
			continue
		}
		delete(stale, name)
		progress("replacing standby " + name)
		if err := ch.replaceAsync(ctx, in, job, stale, size, c, progress); err != nil {
			return err
		}
	}
	if leaderStale {
		if err := ch.switchoverTo(ctx, in, c, otherThan(leader, size.Nodes), progress); err != nil {
			return err
		}
		delete(stale, leader)
		progress("replacing the former leader " + leader)
		if err := ch.replaceAsync(ctx, in, job, stale, size, c, progress); err != nil {
			return err
		}
	} else {
		// Nothing left to restart (in-place updates at most); synchronous
		// replication back on in case a crash left it off.
		if err := ch.registerHolding(ctx, in, job, stale, size, c, progress); err != nil {
			return err
		}
		if err := c.RestoreSynchronousMode(ctx, standbys, progress); err != nil {
			return err
		}
	}
	return ch.readyThroughGateway(ctx, in, progress)
}

// otherThan returns the name of the first of n nodes that is not name.
func otherThan(name string, n int) string {
	for i := 0; i < n; i++ {
		if naming.Member(i) != name {
			return naming.Member(i)
		}
	}
	return name
}

// replaceAsync registers job holding hold (a node restarts) with
// synchronous replication off, and turns it back on once the standbys
// stream again: commits never wait for a standby being stopped, and are
// synchronous again as soon as it is back.
func (ch *Changer) replaceAsync(ctx context.Context, in instance.Instance, job *api.Job, hold map[string]bool, size instance.Size, c Cluster, progress instance.Progress) error {
	if err := ch.asyncWhileReplacing(ctx, in, c, progress); err != nil {
		return err
	}
	if err := ch.registerHolding(ctx, in, job, hold, size, c, progress); err != nil {
		return err
	}
	crashpoint.Hit("update:registered") // synchronous replication still off
	return c.RestoreSynchronousMode(ctx, size.Nodes-1, progress)
}

// registerHolding registers job with the groups in hold kept as registered,
// then waits until every node of the new version runs and the standbys
// stream again.
func (ch *Changer) registerHolding(ctx context.Context, in instance.Instance, job *api.Job, hold map[string]bool, size instance.Size, c Cluster, progress instance.Progress) error {
	jobID := naming.NodesJobID(in.ShortID)
	cur, err := ch.nomad.Job(ctx, jobID)
	if err != nil {
		return err
	}
	version, err := ch.nomad.Register(ctx, holding(job, cur, hold))
	if err != nil {
		return err
	}
	if _, err := ch.nomad.WaitRunning(ctx, jobID, version, size.Nodes, "postgres", "node", progress); err != nil {
		return err
	}
	_, err = c.WaitMembers(ctx, "waiting for the standbys to stream", patroni.Streaming(size.Nodes-1), progress)
	return err
}

// holding returns job with the task groups named in hold taken from cur
// (the registered version) instead.
func holding(job, cur *api.Job, hold map[string]bool) *api.Job {
	out := *job
	out.TaskGroups = make([]*api.TaskGroup, len(job.TaskGroups))
	for i, g := range job.TaskGroups {
		out.TaskGroups[i] = g
		if !hold[*g.Name] {
			continue
		}
		for _, old := range cur.TaskGroups {
			if *old.Name == *g.Name {
				out.TaskGroups[i] = old
			}
		}
	}
	return &out
}

// staleGroups returns the names of the node job's task groups that
// registering job would replace (Nomad's plan: destructive updates or new
// placements).
func (ch *Changer) staleGroups(ctx context.Context, job *api.Job) (map[string]bool, error) {
	plan, err := ch.nomad.Plan(ctx, job)
	if err != nil {
		return nil, err
	}
	out := map[string]bool{}
	if plan.Annotations != nil {
		for name, u := range plan.Annotations.DesiredTGUpdates {
			if u.DestructiveUpdate > 0 || u.Place > 0 {
				out[name] = true
			}
		}
	}
	return out, nil
}

// switchoverTo makes member name the leader unless it leads already
// (patroni.Client.SwitchoverTo), with a CHECKPOINT on the leader just
// before the switchover: it leaves little for the demoted leader's
// shutdown checkpoint, the longest part of a switchover's pause in writes.
func (ch *Changer) switchoverTo(ctx context.Context, in instance.Instance, c Cluster, name string, progress instance.Progress) error {
	return c.SwitchoverTo(ctx, name, func(ctx context.Context) error { return ch.checkpoint(ctx, in) }, progress)
}

// checkpoint runs CHECKPOINT on the leader (through the gateway).
func (ch *Changer) checkpoint(ctx context.Context, in instance.Instance) error {
	admin, err := ch.conn.InstanceAdmin(ctx, in)
	if err != nil {
		return err
	}
	return admin.Checkpoint(ctx)
}

// readyThroughGateway waits until PostgreSQL answers through the gateways and
// serves a certificate naming them.
func (ch *Changer) readyThroughGateway(ctx context.Context, in instance.Instance, progress instance.Progress) error {
	admin, err := ch.conn.InstanceAdmin(ctx, in)
	if err != nil {
		return err
	}
	if err := ch.conn.WaitReady(ctx, admin, progress); err != nil {
		return err
	}
	return ch.certs.CertifyGateway(ctx, in.ShortID, admin, progress)
}
