package tiers

import (
	"context"

	"github.com/pgbroker/pgbroker/crashpoint"
	"github.com/pgbroker/pgbroker/instance"
	"github.com/pgbroker/pgbroker/naming"
	"github.com/pgbroker/pgbroker/patroni"
)

// ToCluster moves a single-node instance to a Business size, its node's data
// kept (the seeds: Starter to Business "migrate seamlessly"): node 0 restarts
// under Patroni, which adopts its data directory and leads (pinned to the
// client holding it); the gateways switch to routing by Patroni and become
// size.Gateways; then the standbys are added, clone the leader and stream
// synchronously. Writes pause while node 0 restarts and while the first
// gateway is replaced (sticky: same client, same address).
func (ch *Changer) ToCluster(ctx context.Context, in instance.Instance, size instance.Size, progress instance.Progress) error {
	if _, _, err := ch.certs.EnsureServer(ctx, in.ShortID, ch.certs.Hosts(in.ShortID)); err != nil {
		return err
	}
	secrets, err := ch.conn.EnsureSecret(ctx, naming.NodesSecretPath(in.ShortID), naming.ClusterSecretItems...)
	if err != nil {
		return err
	}
	if err := ch.EnsureEtcdUser(ctx, in.ShortID); err != nil {
		return err
	}
	cur, err := ch.nomad.Job(ctx, naming.NodesJobID(in.ShortID))
	if err != nil {
		return err
	}
	// Resumed once the standbys were added, Patroni has adopted node 0
	// already: registering it alone again would stop the standbys.
	if cur.Meta[naming.MetaPatroni] != "true" || len(cur.TaskGroups) < 2 {
		if err := ch.adoptNode0(ctx, in, size, progress); err != nil {
			return err
		}
	}
	crashpoint.Hit("tiers:adopted")
	progress("routing the gateways by Patroni")
	if err := ch.gatewaysToCluster(ctx, in, size, progress); err != nil {
		return err
	}
	admin, err := ch.conn.Admin(ctx, in, secrets["admin_password"])
	if err != nil {
		return err
	}
	if err := ch.conn.WaitReady(ctx, admin, progress); err != nil {
		return err
	}
	if err := ensureReplicationRole(ctx, admin, secrets["replication_password"]); err != nil {
		return err
	}
	progress("adding the standbys")
	if err := ch.registerNodes(ctx, in, size, nil, progress); err != nil {
		return err
	}
	if err := ch.WaitStandbys(ctx, admin, secrets["replication_password"], size.Nodes-1, progress); err != nil {
		return err
	}
	if err := ch.WaitHealthy(ctx, in.ShortID, size.Nodes-1, progress); err != nil {
		return err
	}
	if err := ch.jobs.EnsureStanza(ctx, in, size, progress); err != nil {
		return err
	}
	return ch.readyThroughGateway(ctx, in, progress)
}

// adoptNode0 restarts node 0 alone under Patroni, pinned to its client, and
// waits until Patroni has adopted its data directory and it leads.
func (ch *Changer) adoptNode0(ctx context.Context, in instance.Instance, size instance.Size, progress instance.Progress) error {
	one := size
	one.Nodes = 1
	progress("restarting node 0 under Patroni")
	if err := ch.registerNodes(ctx, in, one, map[string]any{"patroni": true, "etcd_hosts": ch.etcd, "node_id": in.NodeID}, progress); err != nil {
		return err
	}
	c, err := ch.clusters(ctx, in.ShortID)
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
func (ch *Changer) gatewaysToCluster(ctx context.Context, in instance.Instance, size instance.Size, progress instance.Progress) error {
	jobID := naming.GatewaysJobID(in.ShortID)
	cur, err := ch.nomad.Job(ctx, jobID)
	if err != nil {
		return err
	}
	steps := []instance.Size{size}
	if len(cur.TaskGroups) == 1 && cur.TaskGroups[0].Count != nil && *cur.TaskGroups[0].Count <= 1 && size.Gateways > 1 {
		first := size
		first.Gateways = 1
		steps = []instance.Size{first, size}
	}
	for _, s := range steps {
		job, err := ch.jobs.Gateways(in, s)
		if err != nil {
			return err
		}
		version, err := ch.nomad.Register(ctx, job)
		if err != nil {
			return err
		}
		if _, err := ch.nomad.WaitRunning(ctx, jobID, version, s.Gateways, "haproxy", "gateway", progress); err != nil {
			return err
		}
	}
	return nil
}
