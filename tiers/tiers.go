// Package tiers changes the shape of a provisioned instance's cluster,
// keeping its data, gateway port and DATABASE_URL: a single node to a
// Business cluster under Patroni (ToCluster), a cluster back to a single
// node (ToSingle), and a rolling replacement of a cluster's nodes with one
// switchover (Roll). It also waits for standbys to stream and for Patroni to
// report a healthy cluster. Every step is idempotent: after a crash, running
// it again finishes it without repeating a switchover or a restart. It
// reaches Nomad, Patroni, etcd, the instance's PostgreSQL, its jobs and its
// certificates through small interfaces it declares.
package tiers

import (
	"context"
	"fmt"
	"maps"
	"slices"

	"github.com/hashicorp/nomad/api"

	"github.com/pgbroker/pgbroker/adminconn"
	"github.com/pgbroker/pgbroker/crashpoint"
	"github.com/pgbroker/pgbroker/instance"
	"github.com/pgbroker/pgbroker/naming"
	"github.com/pgbroker/pgbroker/patroni"
	"github.com/pgbroker/pgbroker/servercert"
)

// Nomad is what tier changes need of Nomad (nomad.Cluster): the node and
// gateway jobs, their allocations, the node service's registrations.
type Nomad interface {
	Job(ctx context.Context, jobID string) (*api.Job, error)
	Register(ctx context.Context, job *api.Job) (uint64, error)
	Plan(ctx context.Context, job *api.Job) (*api.JobPlanResponse, error)
	Allocations(ctx context.Context, jobID string, all bool) ([]*api.AllocationListStub, error)
	AllocationsAfter(ctx context.Context, jobID string, index uint64) ([]*api.AllocationListStub, uint64, error)
	WaitRunning(ctx context.Context, jobID string, version uint64, count int, task, what string, progress func(step string)) ([]*api.AllocationListStub, error)
	Services(ctx context.Context, name string) ([]*api.ServiceRegistration, error)
}

// Conn is the instance's superuser connection and passwords (adminconn.Connector).
type Conn interface {
	Admin(ctx context.Context, in instance.Instance, password string) (adminconn.AdminConn, error)
	InstanceAdmin(ctx context.Context, in instance.Instance) (adminconn.AdminConn, error)
	WaitReady(ctx context.Context, admin adminconn.AdminConn, progress instance.Progress) error
	EnsureSecret(ctx context.Context, path string, keys ...string) (map[string]string, error)
	ReadSecret(ctx context.Context, path, key string) (string, error)
}

// Jobs renders the instance's jobs and keeps their prerequisites
// (instancejobs.Jobs).
type Jobs interface {
	Nodes(in instance.Instance, s instance.Size) (*api.Job, error)
	NodesWith(in instance.Instance, s instance.Size, extra map[string]any) (*api.Job, error)
	Gateways(in instance.Instance, s instance.Size) (*api.Job, error)
	AllocNode(ctx context.Context, jobID string, index int) (string, error)
	CleanData(ctx context.Context, short, client string, groups []string) error
	EnsurePITRKeys(ctx context.Context, short string) error
	EnsureStanza(ctx context.Context, in instance.Instance, size instance.Size, progress instance.Progress) error
}

// Certificates keeps the server certificate naming what it must
// (servercert.Issuer).
type Certificates interface {
	Hosts(short string, gatewayHosts ...string) []string
	EnsureServer(ctx context.Context, short string, hosts []string) (cert string, issued bool, err error)
	CertifyGateway(ctx context.Context, short string, admin servercert.Server, progress func(string)) error
}

// Deps are what a Changer works through.
type Deps struct {
	Nomad Nomad
	Conn  Conn
	Jobs  Jobs
	Certs Certificates
	DCS   DCS
	// Clusters returns an instance's Patroni cluster; nil: its nodes'
	// Patroni REST APIs as registered in Nomad.
	Clusters func(ctx context.Context, short string) (Cluster, error)
	Etcd     []string // host:port of the etcd cluster Patroni keeps its leader lock in
}

// Changer changes instances between tiers. Safe for concurrent use on
// different instances.
type Changer struct {
	nomad    Nomad
	conn     Conn
	jobs     Jobs
	certs    Certificates
	dcs      DCS
	clusters func(ctx context.Context, short string) (Cluster, error)
	etcd     []string
}

// New returns a Changer working through d.
func New(d Deps) *Changer {
	ch := &Changer{nomad: d.Nomad, conn: d.Conn, jobs: d.Jobs, certs: d.Certs, dcs: d.DCS, clusters: d.Clusters, etcd: d.Etcd}
	if ch.clusters == nil {
		ch.clusters = ch.patroniCluster
	}
	return ch
}

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
	secrets, err := ch.conn.EnsureSecret(ctx, naming.NodesSecretPath(in.ShortID), "admin_password", "replication_password")
	if err != nil {
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
	if err := admin.EnsureReplicationRole(ctx, secrets["replication_password"]); err != nil {
		return fmt.Errorf("replication role: %w", err)
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

// ToSingle moves a Business instance to a single-node size: node 0 is made
// the leader (a switchover when needed), the standbys are removed, the
// gateways go back to plain routing and to size.Gateways, and node 0
// restarts without Patroni on its data, pinned to its client, whose id is
// returned. The instance's Patroni keys are deleted from etcd, and the
// former standbys' data directories from their clients (removeStandbyData).
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

// registerNodes registers the node job for size with extra variables and
// waits for its allocations of the new version.
func (ch *Changer) registerNodes(ctx context.Context, in instance.Instance, size instance.Size, extra map[string]any, progress instance.Progress) error {
	if err := ch.jobs.EnsurePITRKeys(ctx, in.ShortID); err != nil {
		return err
	}
	job, err := ch.jobs.NodesWith(in, size, extra)
	if err != nil {
		return err
	}
	version, err := ch.nomad.Register(ctx, job)
	if err != nil {
		return err
	}
	_, err = ch.nomad.WaitRunning(ctx, naming.NodesJobID(in.ShortID), version, size.Nodes, "postgres", "node", progress)
	return err
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
