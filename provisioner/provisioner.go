// Package provisioner carries out operations on instances: provision, plan
// change, configure, bind, deprovision, dumps and the orphan sweep. It
// composes the packages that own each concept (instancejobs: the Nomad jobs;
// adminconn: the superuser connection; servercert: certificates; tiers: tier
// and rolling changes; pitr: point-in-time restores; backup) and hands them
// the Nomad, Patroni and PostgreSQL adapters, through small interfaces
// (adapters.go and theirs) that its unit tests fill with fakes. Every step
// is idempotent, so a run interrupted at any point (a crash, a restart) is
// finished by running it again. It knows nothing of HTTP or OSB status
// codes.
package provisioner

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"time"

	"github.com/hashicorp/nomad/api"

	"github.com/pgbroker/pgbroker/adminconn"
	"github.com/pgbroker/pgbroker/backup"
	"github.com/pgbroker/pgbroker/crashpoint"
	"github.com/pgbroker/pgbroker/instance"
	"github.com/pgbroker/pgbroker/instancejobs"
	"github.com/pgbroker/pgbroker/naming"
	"github.com/pgbroker/pgbroker/nomad"
	"github.com/pgbroker/pgbroker/patroni"
	"github.com/pgbroker/pgbroker/pgadmin"
	"github.com/pgbroker/pgbroker/pitr"
	"github.com/pgbroker/pgbroker/servercert"
	"github.com/pgbroker/pgbroker/tiers"
)

// Config is how instances are laid out on Nomad.
type Config struct {
	Driver       string   // job driver profile: "raw_exec" or "docker"
	Datacenters  []string // Nomad datacenters jobs may run in
	HostNetwork  string   // Nomad host network the ports bind to ("default" for the default one)
	DataRoot     string   // directory on every Nomad client that holds instances' data directories
	PublicHost   string   // host name put in credentials; "" means the gateway's registered address
	Etcd         []string // host:port of the etcd cluster Patroni keeps each Business instance's leader lock in
	NodeNetworks []string // CIDRs replication is admitted from (pg_hba.conf)
	// EtcdCA holds the PEM certificates etcd's server certificate chains to:
	// the broker verifies etcd against them, the node jobs' Patroni too.
	EtcdCA string
	// EtcdUsername and EtcdPassword are the etcd user with the root role the
	// broker authenticates as (it makes each Business instance's own user).
	EtcdUsername, EtcdPassword string
	// PatroniTTL is Patroni's ttl in seconds for new Business clusters
	// (instancejobs.Config.PatroniTTL); 0: the job file's default.
	PatroniTTL int
	BrokerName string  // stamped in every job's Meta (naming.MetaBroker); names this deployment
	Deployment string  // the deployment's identity (store.DeploymentID), stamped in every job's Meta (naming.MetaDeployment)
	BackupDir  string  // directory on every Nomad client holding dumps (the filesystem backup storage), or spooling them for S3
	BackupS3   *S3     // when set, dumps live in this S3 bucket instead of BackupDir
	BackupUser string  // user the dump and restore jobs run as on the clients (never root)
	PITRRepo   string  // directory on every Nomad client of the pgBackRest repository (WAL, base backups); "" turns PITR off unless PITRS3 is set
	PITRS3     *PITRS3 // when set, the pgBackRest repository is this S3 bucket (PITRRepo is then "")

	GatewayCPUMHz    int // CPU of one gateway (HAProxy) in MHz
	GatewayMemoryMiB int // memory of one gateway in MiB
	ReadyPoll        time.Duration

	// PostgresUID and PostgresGID are the numeric ids of the user PostgreSQL
	// runs as on the clients; the rendered TLS key file belongs to it.
	PostgresUID, PostgresGID int
	// PostgresBinDirs maps each PostgreSQL version offered ("15.18") to the
	// directory of its binaries on the clients (PGBROKER_POSTGRES_VERSIONS).
	PostgresBinDirs map[string]string
	CertLifetime    time.Duration // validity of a server certificate from its issue
	CertRenewBefore time.Duration // a certificate expiring within this is re-issued

	// BindingSSLMode is the libpq sslmode of the default URLs in binding
	// credentials (uri, DATABASE_URL, jdbcUrl, read_only_uri): "require" (the
	// default when empty) or "verify-full". The verify-full forms are there
	// either way.
	BindingSSLMode string
}

// Provisioner carries out operations against one Nomad cluster. Safe for
// concurrent use on different instances.
type Provisioner struct {
	nomad nomadRoles // the Nomad adapter, by role
	cfg   Config
	log   *slog.Logger

	conn    *adminconn.Connector // superuser connections to instances, and their passwords
	certs   *servercert.Issuer   // the CA and the certificates it issues to instances
	backups *backup.Backups      // dumps, restores, base backups, pgBackRest's stanza and repository
	jobs    *instancejobs.Jobs   // the instance's node, gateway and cleanup jobs
	tiers   *tiers.Changer       // tier changes and rolling changes of Business clusters (Patroni)
	pitr    *pitr.Restorer       // point-in-time restores
}

// adapters are what New fills with the real Nomad, Patroni and PostgreSQL
// clients and the unit tests with fakes.
type adapters struct {
	nomad    nomadRoles
	connect  adminconn.ConnectFunc                                          // adminconn.Connect
	clusters func(ctx context.Context, short string) (tiers.Cluster, error) // nil: the instance's Patroni REST API
	dcs      tiers.DCS                                                      // patroni.NewDCS
}

// New returns a Provisioner on the Nomad cluster c, whose Variables it
// reaches through secrets (c itself, or sealedcopy.Variables around it).
func New(c *nomad.Cluster, secrets Secrets, cfg Config, log *slog.Logger) *Provisioner {
	return newWith(adapters{nomad: rolesOf(c, secrets), connect: adminconn.Connect, dcs: patroni.NewDCS(patroni.DCSConfig{
		Endpoints: cfg.Etcd, CAPEM: cfg.EtcdCA, Username: cfg.EtcdUsername, Password: cfg.EtcdPassword})}, cfg, log)
}

// newWith returns a Provisioner on the adapters a, cfg's defaults filled in.
func newWith(a adapters, cfg Config, log *slog.Logger) *Provisioner {
	if cfg.HostNetwork == "" {
		cfg.HostNetwork = "default"
	}
	if len(cfg.Datacenters) == 0 {
		cfg.Datacenters = []string{"*"}
	}
	if cfg.GatewayCPUMHz == 0 {
		cfg.GatewayCPUMHz = 100
	}
	if cfg.GatewayMemoryMiB == 0 {
		cfg.GatewayMemoryMiB = 64
	}
	if cfg.BindingSSLMode == "" {
		cfg.BindingSSLMode = "require"
	}
	if cfg.ReadyPoll == 0 {
		cfg.ReadyPoll = 50 * time.Millisecond
	}
	if cfg.CertLifetime == 0 {
		cfg.CertLifetime = 90 * 24 * time.Hour
	}
	if cfg.CertRenewBefore == 0 {
		cfg.CertRenewBefore = 30 * 24 * time.Hour
	}
	p := &Provisioner{nomad: a.nomad, cfg: cfg, log: log}
	// Connections verify servers against the CA; certificates name the
	// gateways' addresses, which connections look up.
	p.conn = adminconn.New(a.nomad, a.connect, func(short string) *tls.Config { return p.certs.AdminTLS(short) }, cfg.ReadyPoll)
	p.certs = servercert.New(a.nomad, p.conn, servercert.Config{BrokerName: cfg.BrokerName, PublicHost: cfg.PublicHost,
		Lifetime: cfg.CertLifetime, RenewBefore: cfg.CertRenewBefore, Poll: cfg.ReadyPoll})
	p.backups = newBackups(a.nomad, cfg, p.certs, p.conn, log)
	p.jobs = instancejobs.New(a.nomad, p.backups, p.certs, instancejobs.Config{Driver: cfg.Driver, Datacenters: cfg.Datacenters,
		HostNetwork: cfg.HostNetwork, DataRoot: cfg.DataRoot, Etcd: cfg.Etcd, EtcdCA: cfg.EtcdCA, NodeNetworks: cfg.NodeNetworks, PITRRepo: cfg.PITRRepo,
		GatewayCPUMHz: cfg.GatewayCPUMHz, GatewayMemoryMiB: cfg.GatewayMemoryMiB, PostgresUID: cfg.PostgresUID, PostgresGID: cfg.PostgresGID,
		PostgresBinDirs: cfg.PostgresBinDirs, PatroniTTL: cfg.PatroniTTL})
	p.tiers = tiers.New(tiers.Deps{Nomad: a.nomad, Conn: p.conn, Jobs: p.jobs, Certs: p.certs, DCS: a.dcs, Clusters: a.clusters, Etcd: cfg.Etcd})
	p.pitr = pitr.New(a.nomad, p.backups, p.jobs, p.conn, p.tiers)
	return p
}

// Instance is what the provisioner needs to know of an instance.
type Instance = instance.Instance

// Size is the part of a plan that shapes the jobs (catalog.Plan).
type Size = instance.Size

// Progress receives the current step of an operation, in words a user reads
// in last_operation ("starting node 1 of 1").
type Progress = instance.Progress

// Placement is where an instance's data lives once provisioned.
type Placement = instance.Placement

// Provision starts the instance's node and gateway jobs on size, waits until
// PostgreSQL answers through the gateway, and creates the database and its
// roles. Idempotent. Errors name the step that failed.
func (p *Provisioner) Provision(ctx context.Context, in Instance, size Size, progress Progress) (Placement, error) {
	progress("creating secrets")
	secrets, err := p.conn.EnsureSecret(ctx, naming.NodesSecretPath(in.ShortID), naming.ClusterSecretItems...)
	if err != nil {
		return Placement{}, err
	}
	if _, _, err := p.certs.EnsureServer(ctx, in.ShortID, p.certs.Hosts(in.ShortID)); err != nil {
		return Placement{}, err
	}
	if err := p.jobs.EnsurePITRKeys(ctx, in.ShortID); err != nil {
		return Placement{}, err
	}
	if size.HA() {
		if err := p.tiers.EnsureEtcdUser(ctx, in.ShortID); err != nil {
			return Placement{}, err
		}
	}
	crashpoint.Hit("provision:secrets")
	progress("registering Nomad jobs")
	nodes, gateways, err := p.renderJobs(in, size)
	if err != nil {
		return Placement{}, err
	}
	nodesVersion, err := p.nomad.Register(ctx, nodes)
	if err != nil {
		return Placement{}, err
	}
	crashpoint.Hit("provision:nodes-registered")
	gatewaysVersion, err := p.nomad.Register(ctx, gateways)
	if err != nil {
		return Placement{}, err
	}
	crashpoint.Hit("provision:gateways-registered")
	allocs, err := p.nomad.WaitRunning(ctx, naming.NodesJobID(in.ShortID), nodesVersion, size.Nodes, "postgres", "node", progress)
	if err != nil {
		return Placement{}, err
	}
	placed := Placement{NodeID: allocs[0].NodeID}
	if size.HA() {
		placed.NodeClients, _ = instancejobs.NodeClients(allocs, size.Nodes)
	}
	crashpoint.Hit("provision:nodes-running")
	gatewayAllocs, err := p.nomad.WaitRunning(ctx, naming.GatewaysJobID(in.ShortID), gatewaysVersion, size.Gateways, "haproxy", "gateway", progress)
	if err != nil {
		return placed, err
	}
	admin, err := p.conn.Admin(ctx, in, secrets["admin_password"])
	if err != nil {
		return placed, err
	}
	if err := p.conn.WaitReady(ctx, admin, progress); err != nil {
		return placed, err
	}
	if err := p.certs.CertifyGateway(ctx, in.ShortID, admin, progress); err != nil {
		return placed, err
	}
	if !size.HA() {
		if err := p.pinSingle(ctx, in, size, placed.NodeID, gatewayAllocs[0].NodeID, progress); err != nil {
			return placed, err
		}
	}
	if size.HA() {
		if err := p.tiers.WaitStandbys(ctx, admin, secrets["replication_password"], size.Nodes-1, progress); err != nil {
			return placed, err
		}
		if err := p.tiers.WaitHealthy(ctx, in.ShortID, size.Nodes-1, progress); err != nil {
			return placed, err
		}
	}
	progress("creating the database and its roles")
	if err := admin.EnsureDatabase(ctx, pgadmin.NamesOf(in.ShortID)); err != nil {
		return placed, fmt.Errorf("create database: %w", err)
	}
	if err := p.jobs.EnsureStanza(ctx, in, size, progress); err != nil {
		return placed, err
	}
	crashpoint.Hit("provision:database")
	return placed, nil
}

// pinSingle marks the nodes Variable cluster_made (naming.ItemClusterMade:
// from then on the start script refuses to initdb an empty cluster in place
// of missing data) and registers the node job and the gateway job of a
// single-node instance again, each pinned to the Nomad client it runs on
// (nodeClient, gatewayClient), unless in pins it already (a repair). Data
// lives on the client that made it and the credentials name the gateway's
// address: once pinned, a reschedule, a lost client or a drain cannot start
// the node elsewhere or move the address. A constraint the running
// allocation meets is an in-place update, and the template that reads the
// mark does not restart the task: nothing restarts. Called once PostgreSQL
// answers (its cluster exists) and the gateway is certified. Errors:
// Nomad's. Source: issue 17 (a node runs on its own data).
func (p *Provisioner) pinSingle(ctx context.Context, in Instance, size Size, nodeClient, gatewayClient string, progress Progress) error {
	if err := p.markClusterMade(ctx, in.ShortID); err != nil {
		return err
	}
	if in.NodeID != "" && in.GatewayNodeID != "" {
		return nil
	}
	progress("pinning the node and the gateway to their clients")
	pinned := in
	pinned.NodeID, pinned.GatewayNodeID = nodeClient, gatewayClient
	if in.NodeID == "" {
		nodes, err := p.jobs.Nodes(pinned, size)
		if err != nil {
			return err
		}
		if _, err := p.nomad.Register(ctx, nodes); err != nil {
			return err
		}
	}
	if in.GatewayNodeID == "" {
		gateways, err := p.jobs.Gateways(pinned, size)
		if err != nil {
			return err
		}
		if _, err := p.nomad.Register(ctx, gateways); err != nil {
			return err
		}
	}
	return nil
}

// markClusterMade sets naming.ItemClusterMade in the nodes Variable of
// instance short, whose single node runs on its cluster (a provision, a
// resize, a move from Business): its start script refuses to initdb from
// then on. Idempotent. Errors: Nomad's.
func (p *Provisioner) markClusterMade(ctx context.Context, short string) error {
	_, err := p.nomad.UpdateVariable(ctx, naming.NodesSecretPath(short), func(items api.VariableItems) bool {
		if items[naming.ItemClusterMade] == "true" {
			return false
		}
		items[naming.ItemClusterMade] = "true"
		return true
	})
	return err
}

// RenderJobs returns the node job and the gateway job that Provision
// registers for in on size, without registering them: the broker's
// definition of the instance, which the reconcile loop compares with
// Nomad's. Errors: the CA is not loaded yet (the node job names it), or
// Nomad's parse error.
func (p *Provisioner) RenderJobs(in Instance, size Size) (nodes, gateways *api.Job, err error) {
	if p.certs.CA() == nil {
		return nil, nil, errors.New("render the jobs of " + in.ShortID + ": the CA is not loaded")
	}
	return p.renderJobs(in, size)
}

// renderJobs is RenderJobs without the check for the CA.
func (p *Provisioner) renderJobs(in Instance, size Size) (nodes, gateways *api.Job, err error) {
	if nodes, err = p.jobs.Nodes(in, size); err != nil {
		return nil, nil, err
	}
	if gateways, err = p.jobs.Gateways(in, size); err != nil {
		return nil, nil, err
	}
	return nodes, gateways, nil
}

// Resize moves a provisioned instance to size: it registers the node job
// again (pinned to the node holding the data) and waits for the new
// allocation to serve through the unchanged gateway. Idempotent.
func (p *Provisioner) Resize(ctx context.Context, in Instance, size Size, progress Progress) error {
	// Instances made before TLS have no certificate yet; the new job needs one.
	if _, _, err := p.certs.EnsureServer(ctx, in.ShortID, p.certs.Hosts(in.ShortID)); err != nil {
		return err
	}
	// Sandbox to Starter turns WAL archiving on: the job renders the S3 keys.
	if err := p.jobs.EnsurePITRKeys(ctx, in.ShortID); err != nil {
		return err
	}
	progress("registering the new node job")
	nodes, err := p.jobs.Nodes(in, size)
	if err != nil {
		return err
	}
	version, err := p.nomad.Register(ctx, nodes)
	if err != nil {
		return err
	}
	crashpoint.Hit("update:registered")
	if _, err := p.nomad.WaitRunning(ctx, naming.NodesJobID(in.ShortID), version, size.Nodes, "postgres", "node", progress); err != nil {
		return err
	}
	admin, err := p.conn.InstanceAdmin(ctx, in)
	if err != nil {
		return err
	}
	if err := p.conn.WaitReady(ctx, admin, progress); err != nil {
		return err
	}
	if err := p.certs.CertifyGateway(ctx, in.ShortID, admin, progress); err != nil {
		return err
	}
	// Sandbox to Starter turns WAL archiving on.
	return p.jobs.EnsureStanza(ctx, in, size, progress)
}

// Deprovision stops the instance's jobs, deletes its data with a cleanup
// batch job on every client that ran one of its nodes (in.NodeID too, when
// recorded), purges the jobs, and deletes its secrets. The jobs are purged
// only after the cleanup, so a retry after a crash still finds where the
// nodes ran. Idempotent: a missing job or secret is not an error.
func (p *Provisioner) Deprovision(ctx context.Context, in Instance, progress Progress) error {
	progress("stopping the gateways and nodes")
	var allocIDs []string
	clients := map[string]bool{}
	if in.NodeID != "" {
		clients[in.NodeID] = true
	}
	jobIDs := []string{naming.GatewaysJobID(in.ShortID), naming.NodesJobID(in.ShortID)}
	for _, jobID := range jobIDs {
		allocs, err := p.nomad.Allocations(ctx, jobID, true)
		if err != nil {
			return err
		}
		for _, a := range allocs {
			allocIDs = append(allocIDs, a.ID)
			if jobID == naming.NodesJobID(in.ShortID) {
				clients[a.NodeID] = true
			}
		}
		if err := p.nomad.Stop(ctx, jobID); err != nil {
			return err
		}
	}
	if err := p.nomad.WaitStopped(ctx, allocIDs); err != nil {
		return err
	}
	crashpoint.Hit("deprovision:stopped")
	if len(clients) > 0 {
		progress("deleting the data directory")
	}
	for _, client := range slices.Sorted(maps.Keys(clients)) {
		if err := p.jobs.CleanData(ctx, in.ShortID, client, nil); err != nil {
			return err
		}
	}
	crashpoint.Hit("deprovision:cleaned")
	for _, jobID := range jobIDs {
		if err := p.nomad.Purge(ctx, jobID); err != nil {
			return err
		}
	}
	if p.cfg.PITRS3 != nil {
		progress("deleting the pgBackRest stanza from S3")
		if err := p.backups.Repository().DeleteStanza(ctx, in.ShortID); err != nil {
			return err
		}
	}
	if err := p.tiers.DeletePatroniKeys(ctx, in.ShortID); err != nil {
		return err
	}
	if err := purgeBatchJobs(ctx, p.nomad, in.ShortID); err != nil {
		return err
	}
	progress("deleting secrets")
	if err := p.nomad.DeleteVariablesUnder(ctx, bindingSecretPrefix(in.ShortID)); err != nil {
		return err
	}
	// Every job's secret of the instance: the batch jobs' (nomad/jobs/pg-<short>-<kind>-<id>), then the nodes'.
	return p.nomad.DeleteVariablesUnder(ctx, "nomad/jobs/pg-"+in.ShortID+"-")
}

// DataSize returns the bytes the instance's databases use.
func (p *Provisioner) DataSize(ctx context.Context, in Instance) (int64, error) {
	admin, err := p.conn.InstanceAdmin(ctx, in)
	if err != nil {
		return 0, err
	}
	return admin.DataSize(ctx)
}

// Ping checks that the Nomad API answers a read.
func (p *Provisioner) Ping(ctx context.Context) error { return p.nomad.Ping(ctx) }
