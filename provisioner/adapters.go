package provisioner

import (
	"context"
	"crypto/tls"
	"crypto/x509"

	"github.com/hashicorp/nomad/api"

	"github.com/pgbroker/pgbroker/extensions"
	"github.com/pgbroker/pgbroker/nomad"
	"github.com/pgbroker/pgbroker/pgadmin"
	"github.com/pgbroker/pgbroker/users"
)

// The provisioner reaches Nomad and PostgreSQL through the small interfaces
// below, one per role; *nomad.Cluster and pgadmin.Admin satisfy them, and
// the unit tests put in-memory fakes in their place (fake_test.go).

// jobs registers, plans, reads and removes Nomad jobs (nomad.Cluster).
type jobs interface {
	Parse(src, jobID string, vars map[string]any) (*api.Job, error)
	Register(ctx context.Context, job *api.Job) (uint64, error)
	Job(ctx context.Context, jobID string) (*api.Job, error)
	Plan(ctx context.Context, job *api.Job) (*api.JobPlanResponse, error)
	Stop(ctx context.Context, jobID string) error
	Purge(ctx context.Context, jobID string) error
	JobIDs(ctx context.Context, prefix string) (map[string]nomad.Owner, error)
	Ping(ctx context.Context) error
}

// allocations reads and waits for the allocations of jobs and the services
// they register (nomad.Cluster).
type allocations interface {
	Allocations(ctx context.Context, jobID string, all bool) ([]*api.AllocationListStub, error)
	AllocationsAfter(ctx context.Context, jobID string, index uint64) ([]*api.AllocationListStub, uint64, error)
	Allocation(ctx context.Context, allocID string) (*api.Allocation, error)
	WaitRunning(ctx context.Context, jobID string, version uint64, count int, task, what string, progress func(step string)) ([]*api.AllocationListStub, error)
	WaitStopped(ctx context.Context, ids []string) error
	WaitComplete(ctx context.Context, jobID, task string) (string, error)
	Services(ctx context.Context, name string) ([]*api.ServiceRegistration, error)
}

// secrets keeps items in Nomad Variables, check-and-set (nomad.Cluster).
type secrets interface {
	EnsureVariable(ctx context.Context, path string, initial map[string]string) (map[string]string, error)
	UpdateVariable(ctx context.Context, path string, change func(api.VariableItems) bool) (api.VariableItems, error)
	Variable(ctx context.Context, path string) (map[string]string, error)
	PutVariable(ctx context.Context, path string, items map[string]string) error
	DeleteVariable(ctx context.Context, path string) error
	DeleteVariablesUnder(ctx context.Context, prefix string) error
}

// allocExec runs commands in, and reads the logs of, a task of an
// allocation (nomad.Cluster): pgBackRest in the node task, batch job logs.
type allocExec interface {
	Exec(ctx context.Context, allocID, task, script string) (string, error)
	TaskLog(ctx context.Context, allocID, task, stream string, limit int) ([]byte, error)
	RestartTask(ctx context.Context, allocID, task string) error
}

// nomadRoles is the Nomad cluster seen through those roles; New fills every
// one with the same *nomad.Cluster.
type nomadRoles struct {
	jobs
	allocations
	secrets
	allocExec
}

func rolesOf(c *nomad.Cluster) nomadRoles { return nomadRoles{c, c, c, c} }

// serverAdmin is what orchestration asks of an instance's PostgreSQL server
// (pgadmin.Admin): is it up, which certificate and pg_hba.conf it serves,
// recovery, replication.
type serverAdmin interface {
	Ping(ctx context.Context) error
	ServerCertificate(ctx context.Context) (*x509.Certificate, error)
	HBA(ctx context.Context) (pgadmin.HBAState, error)
	InRecovery(ctx context.Context) (bool, error)
	HasDataFile(ctx context.Context, name string) (bool, error)
	DataSize(ctx context.Context) (int64, error)
	Checkpoint(ctx context.Context) error
	Standbys(ctx context.Context) ([]pgadmin.Standby, error)
	EnsureReplicationRole(ctx context.Context, password string) error
}

// databaseAdmin makes the instance's database and the broker's roles in it
// (pgadmin.Admin).
type databaseAdmin interface {
	EnsureDatabase(ctx context.Context, n pgadmin.Names) error
	EnsureLoginRole(ctx context.Context, n pgadmin.Names, role, password string, readOnly bool) error
	DropLoginRole(ctx context.Context, n pgadmin.Names, role string) error
	AdoptCluster(ctx context.Context, from, to pgadmin.Names, adminPassword string) error
	EnsureRestoreRole(ctx context.Context, n pgadmin.Names, password string) error
	DisableRestoreRole(ctx context.Context, n pgadmin.Names) error
}

// userAdmin manages the users and extensions the management API shows
// (pgadmin.Admin).
type userAdmin interface {
	Users(ctx context.Context, n pgadmin.Names) ([]users.User, error)
	User(ctx context.Context, n pgadmin.Names, username string) (users.User, error)
	CreateUser(ctx context.Context, n pgadmin.Names, username, password string, readOnly bool) error
	SetPassword(ctx context.Context, n pgadmin.Names, username, password string) error
	Extensions(ctx context.Context, n pgadmin.Names) ([]extensions.InstalledExtension, error)
	EnableExtensions(ctx context.Context, n pgadmin.Names, names []string) error
	DisableExtensions(ctx context.Context, n pgadmin.Names, names []string) error
}

// AdminConn is a superuser connection factory to one instance (pgadmin.Admin;
// fakes in the unit tests). InstanceAdmin hands one out.
type AdminConn interface {
	serverAdmin
	databaseAdmin
	userAdmin
}

// connectAdmin makes the AdminConn for user at host:port (pgadmin.New).
func connectAdmin(host string, port int, user, password string, tlsConfig *tls.Config) AdminConn {
	return pgadmin.New(host, port, user, password, tlsConfig)
}
