// Package pitr carries out point-in-time restores with pgBackRest: an
// instance back to a moment of its own past (RestoreToTime), or a freshly
// provisioned instance made a copy of another one as it was at a moment
// (RestoreFromStanza). A Business instance is restored as a single node,
// then made a cluster again (package tiers). Each restore happens once per
// restore id, however often it is run again after a crash
// (RestoreRegistered says whether it is under way or done). It reaches
// Nomad, the backups, the instance's jobs, its PostgreSQL and the tier
// changes through small interfaces it declares.
package pitr

import (
	"context"
	"time"

	"github.com/hashicorp/nomad/api"

	"github.com/pgbroker/pgbroker/adminconn"
	"github.com/pgbroker/pgbroker/instance"
)

// Nomad is what restores need of Nomad (nomad.Cluster): the node job.
type Nomad interface {
	Job(ctx context.Context, jobID string) (*api.Job, error)
	Register(ctx context.Context, job *api.Job) (uint64, error)
	WaitRunning(ctx context.Context, jobID string, version uint64, count int, task, what string, progress func(step string)) ([]*api.AllocationListStub, error)
}

// Backups is what restores need of pgBackRest (backup.Backups).
type Backups interface {
	ArchiveAndChooseSet(ctx context.Context, short string, target time.Time) (string, error)
	CreateStanza(ctx context.Context, short string) error
}

// Jobs renders the node job with a restore's variables and keeps its
// prerequisites (instancejobs.Jobs).
type Jobs interface {
	NodesWith(in instance.Instance, s instance.Size, extra map[string]any) (*api.Job, error)
	EnsurePITRKeys(ctx context.Context, short string) error
	AllocNode(ctx context.Context, jobID string, index int) (string, error)
}

// Conn is the instance's superuser connection and passwords (adminconn.Connector).
type Conn interface {
	GatewayAddress(ctx context.Context, short string) (string, error)
	At(host string, in instance.Instance, password string) adminconn.AdminConn
	InstanceAdmin(ctx context.Context, in instance.Instance) (adminconn.AdminConn, error)
	WaitReady(ctx context.Context, admin adminconn.AdminConn, progress instance.Progress) error
	ReadSecret(ctx context.Context, path, key string) (string, error)
}

// Tiers turns a Business instance into a single node and back (tiers.Changer).
type Tiers interface {
	ToSingle(ctx context.Context, in instance.Instance, size instance.Size, progress instance.Progress) (instance.Placement, error)
	ToCluster(ctx context.Context, in instance.Instance, size instance.Size, progress instance.Progress) error
}

// Restorer carries out point-in-time restores. Safe for concurrent use on
// different instances.
type Restorer struct {
	nomad   Nomad
	backups Backups
	jobs    Jobs
	conn    Conn
	tiers   Tiers
}

// New returns a Restorer working through the given adapters.
func New(n Nomad, backups Backups, jobs Jobs, conn Conn, tiers Tiers) *Restorer {
	return &Restorer{nomad: n, backups: backups, jobs: jobs, conn: conn, tiers: tiers}
}
