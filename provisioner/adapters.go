package provisioner

import (
	"context"

	"github.com/hashicorp/nomad/api"

	"github.com/pgbroker/pgbroker/adminconn"
	"github.com/pgbroker/pgbroker/nomad"
)

// The provisioner reaches Nomad through the small interfaces below, one per
// role, and PostgreSQL through adminconn; *nomad.Cluster satisfies them, and
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

// Secrets keeps items in Nomad Variables, check-and-set (nomad.Cluster, or
// sealedcopy.Variables around it, which also keeps a sealed copy of each).
type Secrets interface {
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
	Secrets
	allocExec
}

// rolesOf is c in every role, its Variables reached through secrets.
func rolesOf(c *nomad.Cluster, secrets Secrets) nomadRoles { return nomadRoles{c, c, secrets, c} }

// AdminConn is a superuser connection factory to one instance
// (adminconn.AdminConn): what InstanceAdmin hands out.
type AdminConn = adminconn.AdminConn
