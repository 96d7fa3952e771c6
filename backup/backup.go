// Package backup owns an instance's backups and where they live: dumps
// (pg_dump) and their restores as Nomad batch jobs, pgBackRest base backups,
// the stanza and its repository (a directory on the clients or an S3
// bucket), the pgBackRest side of point-in-time recovery (archive check,
// info, choosing the backup set), and the dump storages (a directory or an
// S3 bucket). Both S3 uses go through one client (minio-go, newS3Client).
//
// It reaches Nomad through the Nomad interface (*nomad.Cluster is one) and
// knows nothing of the orchestration that re-registers node jobs; the
// provisioner calls it for that.
package backup

import (
	"context"
	"crypto/tls"
	"log/slog"

	"github.com/hashicorp/nomad/api"

	"github.com/pgbroker/pgbroker/pki"
)

// Nomad is what backups need of the Nomad cluster (*nomad.Cluster; a fake
// in unit tests). Errors are the adapter's: nomad.IsNotFound tells a
// missing job or Variable, *nomad.JobFailedError a failed batch job,
// *nomad.ExecError a command that exited non-zero.
type Nomad interface {
	Parse(src, jobID string, vars map[string]any) (*api.Job, error)
	Register(ctx context.Context, job *api.Job) (uint64, error)
	Job(ctx context.Context, jobID string) (*api.Job, error)
	Purge(ctx context.Context, jobID string) error
	WaitComplete(ctx context.Context, jobID, task string) (string, error)
	WaitStopped(ctx context.Context, allocIDs []string) error
	TaskLog(ctx context.Context, allocID, task, stream string, limit int) ([]byte, error)
	Allocations(ctx context.Context, jobID string, all bool) ([]*api.AllocationListStub, error)
	Allocation(ctx context.Context, allocID string) (*api.Allocation, error)
	Exec(ctx context.Context, allocID, task, script string) (string, error)
	Services(ctx context.Context, name string) ([]*api.ServiceRegistration, error)

	Variable(ctx context.Context, path string) (map[string]string, error)
	PutVariable(ctx context.Context, path string, items map[string]string) error
	EnsureVariable(ctx context.Context, path string, initial map[string]string) (map[string]string, error)
	UpdateVariable(ctx context.Context, path string, change func(api.VariableItems) bool) (api.VariableItems, error)
	DeleteVariable(ctx context.Context, path string) error
}

// Config is where backups run and where they go.
type Config struct {
	Driver      string   // job driver profile: "raw_exec" or "docker"
	Datacenters []string // Nomad datacenters the batch jobs may run in
	DataRoot    string   // directory on every Nomad client that holds instances' data directories
	BackupDir   string   // directory on every Nomad client holding dumps (the filesystem storage), or spooling them for S3
	BackupUser  string   // user the dump and restore jobs run as (never root; owns BackupDir); "" keeps backup.nomad.hcl's default
	BackupS3    *S3Config
	PITRRepo    string  // directory on every Nomad client of the pgBackRest repository; "" turns PITR off unless PITRS3 is set
	PITRS3      *PITRS3 // when set, the pgBackRest repository is this S3 bucket

	// PostgresUID and PostgresGID are the numeric ids of the user PostgreSQL
	// runs as on the clients (a base backup job writes as it).
	PostgresUID, PostgresGID int
	// PostgresBinDirs maps each PostgreSQL version offered ("15.18") to the
	// directory of its binaries on the clients (pgversion.Offered.BinDirs).
	PostgresBinDirs map[string]string
}

// Hooks are what backups ask of the rest of the executor: things the
// provisioner owns because every instance job shares them.
type Hooks struct {
	// CA returns the broker's CA, nil before it is loaded (base backups
	// from a standby need it for pgBackRest's TLS server).
	CA func() *pki.CA
	// GatewayAddress returns an address the instance's gateway is
	// registered at. Errors when none is.
	GatewayAddress func(ctx context.Context, short string) (string, error)
	// EnsureServerCertificate makes sure the pgBackRest TLS server of
	// instance short presents a certificate for every registered node
	// address.
	EnsureServerCertificate func(ctx context.Context, short string) error
	// NodeTLS returns how to verify the Patroni REST API of a node of
	// instance short: the broker's CA and the node service name
	// (servercert.Issuer.AdminTLS).
	NodeTLS func(short string) *tls.Config
}

// Backups carries out an instance's backups and restores against one Nomad
// cluster. Safe for concurrent use on different instances.
type Backups struct {
	nomad Nomad
	cfg   Config
	hooks Hooks
	log   *slog.Logger
}

// New returns the Backups of cfg, reaching Nomad through n.
func New(n Nomad, cfg Config, hooks Hooks, log *slog.Logger) *Backups {
	if len(cfg.Datacenters) == 0 {
		cfg.Datacenters = []string{"*"}
	}
	return &Backups{nomad: n, cfg: cfg, hooks: hooks, log: log}
}

// Instance is what backups need to know of an instance.
type Instance struct {
	ShortID      string // naming.ShortID of the instance id
	GatewayPort  int    // static gateway port
	ReadOnlyPort int    // static port of the gateways' read-only listener (plans with standbys); 0: none
	NodeID       string // Nomad node holding the data directory; "" before first placement
	// PostgresVersion is the version the instance runs ("15.18"): the dump
	// and restore jobs use its binaries. "": the job file's default.
	PostgresVersion string
}

// Progress receives the current step, in words a user reads in
// last_operation.
type Progress func(step string)

// batchVars are the variables every batch job file of instance short takes.
func batchVars(cfg Config, short string) map[string]any {
	return map[string]any{"instance": short, "driver": cfg.Driver, "datacenters": cfg.Datacenters}
}
