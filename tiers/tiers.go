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
	"crypto/tls"

	"github.com/hashicorp/nomad/api"

	"github.com/pgbroker/pgbroker/adminconn"
	"github.com/pgbroker/pgbroker/instance"
	"github.com/pgbroker/pgbroker/naming"
	"github.com/pgbroker/pgbroker/servercert"
)

// Nomad is what tier changes need of Nomad (nomad.Cluster): the node and
// gateway jobs, their allocations, the node service's registrations, the
// node job's Variable.
type Nomad interface {
	Job(ctx context.Context, jobID string) (*api.Job, error)
	Register(ctx context.Context, job *api.Job) (uint64, error)
	Plan(ctx context.Context, job *api.Job) (*api.JobPlanResponse, error)
	Allocations(ctx context.Context, jobID string, all bool) ([]*api.AllocationListStub, error)
	AllocationsAfter(ctx context.Context, jobID string, index uint64) ([]*api.AllocationListStub, uint64, error)
	WaitRunning(ctx context.Context, jobID string, version uint64, count int, task, what string, progress func(step string)) ([]*api.AllocationListStub, error)
	Services(ctx context.Context, name string) ([]*api.ServiceRegistration, error)
	UpdateVariable(ctx context.Context, path string, change func(api.VariableItems) bool) (api.VariableItems, error)
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
	AdminTLS(short string) *tls.Config
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
