// Package instancejobs renders an instance's Nomad jobs from the HCL files
// of nomad-jobs (its nodes, its gateways, the batch job that deletes its
// data) and keeps what the node job needs before it is registered: the
// pgBackRest repository's keys and TLS server certificate in its Variable,
// the stanza WAL is archived to. It reaches Nomad, the backups and the
// certificates through small interfaces it declares.
package instancejobs

import (
	"context"
	"fmt"
	"time"

	"github.com/hashicorp/nomad/api"

	"github.com/pgbroker/pgbroker/backup"
	"github.com/pgbroker/pgbroker/extensions"
	"github.com/pgbroker/pgbroker/instance"
	"github.com/pgbroker/pgbroker/naming"
	nomadjobs "github.com/pgbroker/pgbroker/nomad-jobs"
	"github.com/pgbroker/pgbroker/pgversion"
	"github.com/pgbroker/pgbroker/pki"
)

// Nomad is what the jobs need of Nomad (nomad.Cluster).
type Nomad interface {
	Parse(src, jobID string, vars map[string]any) (*api.Job, error)
	Register(ctx context.Context, job *api.Job) (uint64, error)
	Purge(ctx context.Context, jobID string) error
	Allocations(ctx context.Context, jobID string, all bool) ([]*api.AllocationListStub, error)
	WaitComplete(ctx context.Context, jobID, task string) (string, error)
}

// Backups is what the node job needs of the backups (backup.Backups): the
// pgBackRest repository its variables name, its keys, its stanza.
type Backups interface {
	Repository() backup.Repository
	SyncPITRKeys(ctx context.Context, short string) (bool, error)
	CreateStanza(ctx context.Context, short string) error
}

// Certificates is what the node job needs of the broker's CA
// (servercert.Issuer).
type Certificates interface {
	CA() *pki.CA // nil before it is loaded
	EnsurePgBackRest(ctx context.Context, short string) error
}

// Config is how instances are laid out on Nomad (provisioner.Config).
type Config struct {
	Driver       string   // job driver profile: "raw_exec" or "docker"
	Datacenters  []string // Nomad datacenters jobs may run in
	HostNetwork  string   // Nomad host network the ports bind to
	DataRoot     string   // directory on every Nomad client that holds instances' data directories
	Etcd         []string // host:port of the etcd cluster Patroni keeps its leader lock in
	NodeNetworks []string // CIDRs replication is admitted from; nil: any address
	EtcdCA       string   // PEM certificates etcd's server certificate chains to ("": the system's)
	// PatroniTTL is Patroni's ttl in seconds (nodes.nomad.hcl patroni_ttl;
	// loop_wait 1, retry_timeout (ttl-1)/2): it bounds a hung leader's
	// failover. Patroni reads it at a cluster's bootstrap only. 0: the job
	// file's default.
	PatroniTTL       int
	PITRRepo         string // directory of the pgBackRest repository on every client; "" when in S3 or off
	GatewayCPUMHz    int    // CPU of one gateway (HAProxy) in MHz
	GatewayMemoryMiB int    // memory of one gateway in MiB
	PostgresUID      int    // numeric id of the user PostgreSQL runs as on the clients
	PostgresGID      int    // numeric id of its group
	// PostgresBinDirs maps each PostgreSQL version offered ("15.18") to the
	// directory of its binaries on the clients (pgversion.Offered.BinDirs).
	PostgresBinDirs map[string]string
}

// Jobs renders and runs an instance's jobs. Safe for concurrent use.
type Jobs struct {
	nomad   Nomad
	backups Backups
	certs   Certificates
	cfg     Config
}

// New returns the Jobs of cfg.
func New(n Nomad, backups Backups, certs Certificates, cfg Config) *Jobs {
	return &Jobs{nomad: n, backups: backups, certs: certs, cfg: cfg}
}

// vars are the variables every job file of the instance takes.
func (j *Jobs) vars(short string) map[string]any {
	return map[string]any{
		"instance":     short,
		"driver":       j.cfg.Driver,
		"datacenters":  j.cfg.Datacenters,
		"host_network": j.cfg.HostNetwork,
	}
}

// Nodes returns the node job of an instance on plan size s.
func (j *Jobs) Nodes(in instance.Instance, s instance.Size) (*api.Job, error) {
	return j.NodesWith(in, s, nil)
}

// NodesWith is Nodes with extra variables (a point-in-time restore, a
// plan change between tiers), which override the size's.
func (j *Jobs) NodesWith(in instance.Instance, s instance.Size, extra map[string]any) (*api.Job, error) {
	vars := j.vars(in.ShortID)
	// WAL archiving, unless the clients' pgBackRest does not know the
	// instance's major (pgversion.Archived).
	if s.PITRDays > 0 && j.backups.Repository().On() && pgversion.Archived(in.PostgresVersion) {
		j.backups.Repository().SetVars(vars)
	}
	vars["node_count"] = s.Nodes
	vars["memory_mib"] = s.MemoryMiB
	vars["cpu_mhz"] = s.CPUMHz
	vars["max_connections"] = s.MaxConnections
	if s.AutovacuumNaptime >= time.Second {
		vars["autovacuum_naptime_s"] = int(s.AutovacuumNaptime / time.Second)
	}
	vars["data_root"] = j.cfg.DataRoot
	vars["node_id"] = in.NodeID
	if s.HA() {
		// Patroni clones a node that starts on a new client from the leader:
		// nodes follow distinct_hosts, not the first placement, unless a
		// repair pins each to its own data.
		vars["node_id"] = ""
		vars["patroni"] = true
		if len(in.NodeClients) > 0 {
			vars["node_clients"] = in.NodeClients
		}
	}
	vars["postgres_uid"] = j.cfg.PostgresUID
	vars["postgres_gid"] = j.cfg.PostgresGID
	vars["shared_preload_libraries"] = extensions.PreloadLibraries(in.Extensions)
	if err := j.setBinDir(vars, in.PostgresVersion); err != nil {
		return nil, err
	}
	for k, v := range extra {
		vars[k] = v
	}
	if vars["patroni"] == true {
		// Patroni logs in to etcd over TLS as user pg-<instance> (etcd_password in the Variable).
		vars["etcd_hosts"] = j.cfg.Etcd
		vars["etcd_ca"] = j.cfg.EtcdCA
		if j.cfg.PatroniTTL > 0 {
			vars["patroni_ttl"] = j.cfg.PatroniTTL
		}
	}
	if len(j.cfg.NodeNetworks) > 0 {
		vars["node_networks"] = j.cfg.NodeNetworks
	}
	if j.certs.CA() != nil {
		// Replication needs a node certificate from it; Patroni's REST API
		// and pgBackRest's TLS server verify by it.
		vars["broker_ca"] = string(j.certs.CA().CertPEM)
	}
	job, err := j.nomad.Parse(nomadjobs.Nodes, naming.NodesJobID(in.ShortID), vars)
	if err != nil {
		return nil, err
	}
	if vars["patroni"] == true {
		job.Meta[naming.MetaPatroni] = "true"
	}
	return job, nil
}

// setBinDir sets variable postgres_bin_dir to the binaries of version ("":
// the job file's default). Errors when version is not configured.
func (j *Jobs) setBinDir(vars map[string]any, version string) error {
	if version == "" {
		return nil
	}
	dir, ok := j.cfg.PostgresBinDirs[version]
	if !ok {
		return fmt.Errorf("render node job: the instance runs PostgreSQL %s, which is not among the versions configured (PGBROKER_POSTGRES_VERSIONS)", version)
	}
	vars["postgres_bin_dir"] = dir
	return nil
}

// Gateways returns the gateway job of an instance on plan size s.
func (j *Jobs) Gateways(in instance.Instance, s instance.Size) (*api.Job, error) {
	vars := j.vars(in.ShortID)
	vars["gateway_count"] = s.Gateways
	vars["gateway_port"] = in.GatewayPort
	vars["gateway_cpu_mhz"] = j.cfg.GatewayCPUMHz
	vars["gateway_memory_mib"] = j.cfg.GatewayMemoryMiB
	vars["max_connections"] = s.MaxConnections
	vars["patroni"] = s.HA()
	if in.GatewayNodeID != "" && !s.HA() {
		vars["node_id"] = in.GatewayNodeID // back on its former client (a repair)
	}
	if s.HA() {
		vars["read_only_port"] = in.ReadOnlyPort
		if j.certs.CA() != nil {
			vars["broker_ca"] = string(j.certs.CA().CertPEM) // the checks verify Patroni's REST API by it
		}
	}
	return j.nomad.Parse(nomadjobs.Gateways, naming.GatewaysJobID(in.ShortID), vars)
}

// Cleanup returns the batch job that deletes, on Nomad client client,
// the data directories of the node task groups groups (node-<index>) of
// instance short, or with no groups its whole data directory and stanza
// (cleanuj.nomad.hcl).
func (j *Jobs) Cleanup(short, client string, groups []string) (*api.Job, error) {
	vars := j.vars(short)
	delete(vars, "host_network")
	vars["data_root"] = j.cfg.DataRoot
	vars["node_id"] = client
	vars["node_groups"] = groups
	vars["pitr_repo"] = j.cfg.PITRRepo // a directory; a stanza in S3 is deleted by Deprovision itself
	return j.nomad.Parse(nomadjobs.Cleanup, naming.CleanupJobID(short), vars)
}

// CleanData runs Cleanup(short, client, groups), waits until it
// completed and purges it. Idempotent (deleting what is gone succeeds).
// Errors: *JobFailedError when rm failed; others are worth retrying.
func (j *Jobs) CleanData(ctx context.Context, short, client string, groups []string) error {
	cleanup, err := j.Cleanup(short, client, groups)
	if err != nil {
		return err
	}
	if _, err := j.nomad.Register(ctx, cleanup); err != nil {
		return err
	}
	if _, err := j.nomad.WaitComplete(ctx, naming.CleanupJobID(short), "cleanup"); err != nil {
		return err
	}
	return j.nomad.Purge(ctx, naming.CleanupJobID(short))
}

// AllocNode returns the Nomad node of the job's running allocation of node
// index (task group node-<index>).
func (j *Jobs) AllocNode(ctx context.Context, jobID string, index int) (string, error) {
	allocs, err := j.nomad.Allocations(ctx, jobID, false)
	if err != nil {
		return "", err
	}
	for _, a := range allocs {
		if a.DesiredStatus == api.AllocDesiredStatusRun && a.TaskGroup == naming.Member(index) {
			return a.NodeID, nil
		}
	}
	return "", fmt.Errorf("no allocation of group %s in %s", naming.Member(index), jobID)
}

// NodeClients returns the Nomad node of each of the n nodes (task group
// node-<index>) among allocs, a node job's allocations, by index: the one
// whose allocation runs (desired status run, client status running). ok is
// false unless each of the n nodes has exactly one, on n distinct clients:
// where each node's data lives is then known without doubt.
func NodeClients(allocs []*api.AllocationListStub, n int) (clients []string, ok bool) {
	clients = make([]string, n)
	seen := map[string]bool{}
	for _, a := range allocs {
		if a.DesiredStatus != api.AllocDesiredStatusRun || a.ClientStatus != api.AllocClientStatusRunning {
			continue
		}
		for i := range clients {
			if a.TaskGroup != naming.Member(i) {
				continue
			}
			if clients[i] != "" || seen[a.NodeID] {
				return nil, false
			}
			clients[i], seen[a.NodeID] = a.NodeID, true
		}
	}
	if len(seen) != n {
		return nil, false
	}
	return clients, true
}

// EnsurePITRKeys writes the S3 keys into the node job's Nomad Variable
// (which must exist) when they are missing or differ, so that the node job
// renders them, and, with any pgBackRest repository, the certificate of the
// nodes' pgBackRest TLS server (for the addresses of the nodes registered
// now; a base backup from a standby makes sure it names the primary's): a
// Business node job renders it, and a job must not wait for a missing item.
// Errors: Nomad's, naming the Variable.
func (j *Jobs) EnsurePITRKeys(ctx context.Context, short string) error {
	if _, err := j.backups.SyncPITRKeys(ctx, short); err != nil {
		return err
	}
	if !j.backups.Repository().On() || j.certs.CA() == nil {
		return nil
	}
	return j.certs.EnsurePgBackRest(ctx, short)
}

// EnsureStanza creates the instance's pgBackRest stanza on its (leading)
// node when WAL archiving is on for size, so archive_command succeeds from
// the first WAL segment. Without it every archive attempt fails until the
// first weekly base backup creates the stanza, filling the log, and each
// shutdown (a switchover, a plan change) waits for the archiver's failing
// retries. Nothing either when the clients' pgBackRest does not know the
// instance's major (pgversion.Archived: the node job archives nothing).
// Idempotent. Errors: *ExecError from pgBackRest.
func (j *Jobs) EnsureStanza(ctx context.Context, in instance.Instance, size instance.Size, progress instance.Progress) error {
	if size.PITRDays == 0 || !j.backups.Repository().On() || !pgversion.Archived(in.PostgresVersion) {
		return nil
	}
	progress("creating the pgBackRest stanza")
	return j.backups.CreateStanza(ctx, in.ShortID)
}
