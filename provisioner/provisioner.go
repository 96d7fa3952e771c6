// Package provisioner carries out operations on instances: it renders and
// registers the Nomad jobs (nomad-jobs), waits for their allocations, keeps
// secrets in Nomad Variables, and administers each instance's PostgreSQL
// through pgadmin. Every step is idempotent, so a run interrupted at any point
// (a crash, a restart) is finished by running it again. It reaches Nomad,
// Patroni and PostgreSQL through small interfaces (adapters.go, cluster),
// which its unit tests fill with fakes. It knows nothing of HTTP or OSB
// status codes.
package provisioner

import (
	"context"
	"crypto/tls"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/hashicorp/nomad/api"

	"github.com/pgbroker/pgbroker/backup"
	"github.com/pgbroker/pgbroker/crashpoint"
	"github.com/pgbroker/pgbroker/naming"
	"github.com/pgbroker/pgbroker/nomad"
	"github.com/pgbroker/pgbroker/patroni"
	"github.com/pgbroker/pgbroker/pki"
)

// Config is how instances are laid out on Nomad.
type Config struct {
	Driver      string   // job driver profile: "raw_exec" or "docker"
	Datacenters []string // Nomad datacenters jobs may run in
	HostNetwork string   // Nomad host network the ports bind to ("default" for the default one)
	DataRoot    string   // directory on every Nomad client that holds instances' data directories
	PublicHost  string   // host name put in credentials; "" means the gateway's registered address
	Etcd        []string // host:port of the etcd cluster Patroni keeps each Business instance's leader lock in
	BrokerName  string   // stamped in every job's Meta (MetaBroker); names this deployment
	Deployment  string   // the deployment's identity (store.DeploymentID), stamped in every job's Meta (nomad.MetaDeployment)
	BackupDir   string   // directory on every Nomad client holding dumps (the filesystem backup storage), or spooling them for S3
	BackupS3    *S3      // when set, dumps live in this S3 bucket instead of BackupDir
	BackupUser  string   // user the dump and restore jobs run as on the clients (never root)
	PITRRepo    string   // directory on every Nomad client of the pgBackRest repository (WAL, base backups); "" turns PITR off unless PITRS3 is set
	PITRS3      *PITRS3  // when set, the pgBackRest repository is this S3 bucket (PITRRepo is then "")

	GatewayCPUMHz    int // CPU of one gateway (HAProxy) in MHz
	GatewayMemoryMiB int // memory of one gateway in MiB
	ReadyPoll        time.Duration

	// PostgresUID and PostgresGID are the numeric ids of the user PostgreSQL
	// runs as on the clients; the rendered TLS key file belongs to it.
	PostgresUID, PostgresGID int
	CertLifetime             time.Duration // validity of a server certificate from its issue
	CertRenewBefore          time.Duration // a certificate expiring within this is re-issued

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
	ca    *pki.CA // set by LoadCA

	backups *backup.Backups // dumps, restores, base backups, pgBackRest's stanza and repository

	clusters func(ctx context.Context, short string) (cluster, error) // an instance's Patroni cluster (patroniCluster)
	dcs      dcs                                                      // where Patroni keeps its keys (etcd)

	// connectAdmin opens an instance's superuser connection factory (pgadmin.New).
	connectAdmin func(host string, port int, user, password string, tlsConfig *tls.Config) AdminConn
}

// New returns a Provisioner using the Nomad client c.
func New(c *api.Client, cfg Config, log *slog.Logger) *Provisioner {
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
	p := &Provisioner{nomad: rolesOf(nomad.New(c, cfg.BrokerName, cfg.Deployment)), cfg: cfg, log: log, dcs: patroni.NewDCS(cfg.Etcd), connectAdmin: connectAdmin}
	p.clusters = p.patroniCluster
	p.backups = p.newBackups(cfg)
	return p
}

// Instance is what the provisioner needs to know of an instance.
type Instance struct {
	ShortID      string // see ShortID
	GatewayPort  int    // static gateway port
	ReadOnlyPort int    // static port of the gateways' read-only listener (plans with standbys); 0: none
	NodeID       string // Nomad node holding the data directory; "" before first placement

	ForceTLS   bool     // pg_hba.conf allows TLS connections only
	Extensions []string // extensions the broker manages in the instance's database (extensions.Contrib names)
}

// Size is the part of a plan that shapes the jobs (catalog.Plan).
type Size struct {
	MemoryMiB      int
	CPUMHz         int
	Nodes          int
	Gateways       int
	MaxConnections int
	// AutovacuumNaptime is PostgreSQL's autovacuum_naptime, whole
	// seconds; 0 leaves PostgreSQL's default (1 min).
	AutovacuumNaptime time.Duration
	PITRDays          int // point-in-time recovery window in days; 0: no WAL archiving
}

// HA reports whether the plan has standbys: its nodes run under Patroni and
// its gateways route to the leader.
func (s Size) HA() bool { return s.Nodes > 1 }

// Progress receives the current step of an operation, in words a user reads
// in last_operation ("starting node 1 of 1").
type Progress func(step string)

// Placement is where an instance's data lives once provisioned.
type Placement struct {
	NodeID string // Nomad node id of the first node allocation
}

// Provision starts the instance's node and gateway jobs on size, waits until
// PostgreSQL answers through the gateway, and creates the database and its
// roles. Idempotent. Errors name the step that failed.
func (p *Provisioner) Provision(ctx context.Context, in Instance, size Size, progress Progress) (Placement, error) {
	progress("creating secrets")
	secrets, err := p.ensureSecret(ctx, naming.NodesSecretPath(in.ShortID), "admin_password", "replication_password")
	if err != nil {
		return Placement{}, err
	}
	if _, _, err := p.ensureServerCertificate(ctx, in.ShortID, p.certificateHosts(in.ShortID)); err != nil {
		return Placement{}, err
	}
	if err := p.ensurePITRKeys(ctx, in.ShortID); err != nil {
		return Placement{}, err
	}
	crashpoint.Hit("provision:secrets")
	progress("registering Nomad jobs")
	nodes, err := p.NodesJob(in, size)
	if err != nil {
		return Placement{}, err
	}
	gateways, err := p.GatewaysJob(in, size)
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
	crashpoint.Hit("provision:nodes-running")
	if _, err := p.nomad.WaitRunning(ctx, naming.GatewaysJobID(in.ShortID), gatewaysVersion, size.Gateways, "haproxy", "gateway", progress); err != nil {
		return placed, err
	}
	admin, err := p.admin(ctx, in, secrets["admin_password"])
	if err != nil {
		return placed, err
	}
	if err := p.waitReady(ctx, admin, progress); err != nil {
		return placed, err
	}
	if err := p.certifyGateway(ctx, in, admin, progress); err != nil {
		return placed, err
	}
	if size.HA() {
		if err := p.waitStandbys(ctx, admin, secrets["replication_password"], size.Nodes-1, progress); err != nil {
			return placed, err
		}
		if err := p.waitHealthy(ctx, in.ShortID, size.Nodes-1, progress); err != nil {
			return placed, err
		}
	}
	progress("creating the database and its roles")
	if err := admin.EnsureDatabase(ctx, DatabaseNames(in.ShortID)); err != nil {
		return placed, fmt.Errorf("create database: %w", err)
	}
	if err := p.ensureStanza(ctx, in, size, progress); err != nil {
		return placed, err
	}
	crashpoint.Hit("provision:database")
	return placed, nil
}

// Resize moves a provisioned instance to size: it registers the node job
// again (pinned to the node holding the data) and waits for the new
// allocation to serve through the unchanged gateway. Idempotent.
func (p *Provisioner) Resize(ctx context.Context, in Instance, size Size, progress Progress) error {
	// Instances made before TLS have no certificate yet; the new job needs one.
	if _, _, err := p.ensureServerCertificate(ctx, in.ShortID, p.certificateHosts(in.ShortID)); err != nil {
		return err
	}
	// Sandbox to Starter turns WAL archiving on: the job renders the S3 keys.
	if err := p.ensurePITRKeys(ctx, in.ShortID); err != nil {
		return err
	}
	progress("registering the new node job")
	nodes, err := p.NodesJob(in, size)
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
	admin, err := p.instanceAdmin(ctx, in)
	if err != nil {
		return err
	}
	if err := p.waitReady(ctx, admin, progress); err != nil {
		return err
	}
	if err := p.certifyGateway(ctx, in, admin, progress); err != nil {
		return err
	}
	// Sandbox to Starter turns WAL archiving on.
	return p.ensureStanza(ctx, in, size, progress)
}

// certifyGateway makes the server certificate name the gateway's address
// when credentials give that address (no PGBROKER_PUBLIC_HOST), and waits
// until PostgreSQL serves it. The address is known only once the gateway is
// placed, so the first certificate names the node service alone.
func (p *Provisioner) certifyGateway(ctx context.Context, in Instance, admin AdminConn, progress Progress) error {
	if p.cfg.PublicHost != "" {
		return nil
	}
	hosts, err := p.gatewayAddresses(ctx, in.ShortID)
	if err != nil {
		return err
	}
	cert, issued, err := p.ensureServerCertificate(ctx, in.ShortID, p.certificateHosts(in.ShortID, hosts...))
	if err != nil {
		return err
	}
	if issued {
		progress("loading the server certificate for " + strings.Join(hosts, ", "))
	}
	return p.waitServing(ctx, admin, cert)
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
		if err := p.cleanData(ctx, in.ShortID, client, nil); err != nil {
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
	if err := p.deletePatroniKeys(ctx, in.ShortID); err != nil {
		return err
	}
	if err := p.purgeBatchJobs(ctx, in.ShortID); err != nil {
		return err
	}
	progress("deleting secrets")
	if err := p.nomad.DeleteVariablesUnder(ctx, bindingSecretPrefix(in.ShortID)); err != nil {
		return err
	}
	// Every job's secret of the instance: the batch jobs' (nomad/jobs/pg-<short>-<kind>-<id>), then the nodes'.
	return p.nomad.DeleteVariablesUnder(ctx, "nomad/jobs/pg-"+in.ShortID+"-")
}

// purgeBatchJobs purges the instance's dump, restore and base backup jobs
// that still run or linger (a base backup started just before the
// deprovision). Errors: Nomad's.
func (p *Provisioner) purgeBatchJobs(ctx context.Context, short string) error {
	jobs, err := p.nomad.JobIDs(ctx, "pg-"+short+"-")
	if err != nil {
		return err
	}
	for _, id := range slices.Sorted(maps.Keys(jobs)) {
		if m := ownedJobID.FindStringSubmatch(id); m == nil || m[3] == "" {
			continue // not a batch job of the instance
		}
		if err := p.nomad.Purge(ctx, id); err != nil {
			return err
		}
	}
	return nil
}

// DataSize returns the bytes the instance's databases use.
func (p *Provisioner) DataSize(ctx context.Context, in Instance) (int64, error) {
	admin, err := p.instanceAdmin(ctx, in)
	if err != nil {
		return 0, err
	}
	return admin.DataSize(ctx)
}

// admin returns a superuser connection factory for the instance, through its gateway.
func (p *Provisioner) admin(ctx context.Context, in Instance, password string) (AdminConn, error) {
	host, err := p.gatewayAddress(ctx, in.ShortID)
	if err != nil {
		return nil, err
	}
	return p.connectAdmin(host, in.GatewayPort, naming.AdminUser, password, p.adminTLS(in.ShortID)), nil
}

// waitReady polls SELECT 1 through the gateway until it answers. Errors
// when ctx ends, with the last connection error. (A gateway whose
// configuration fell behind the node service is restarted by the
// gateway.Watcher the broker runs beside its workers.)
func (p *Provisioner) waitReady(ctx context.Context, admin AdminConn, progress Progress) error {
	progress("waiting for PostgreSQL to accept connections")
	for {
		attempt, cancel := context.WithTimeout(ctx, 2*time.Second)
		err := admin.Ping(attempt)
		cancel()
		if err == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("PostgreSQL did not accept connections through the gateway: %w", err)
		case <-time.After(p.cfg.ReadyPoll):
		}
	}
}

// waitServing polls until PostgreSQL presents the server certificate certPEM
// (its template was re-rendered and PostgreSQL reloaded it).
func (p *Provisioner) waitServing(ctx context.Context, admin AdminConn, certPEM string) error {
	want, err := pki.ParseCertificate([]byte(certPEM))
	if err != nil {
		return fmt.Errorf("server certificate in Nomad: %w", err)
	}
	for {
		attempt, cancel := context.WithTimeout(ctx, 2*time.Second)
		got, err := admin.ServerCertificate(attempt)
		cancel()
		if err == nil && got.Equal(want) {
			return nil
		}
		if err == nil {
			err = fmt.Errorf("PostgreSQL still serves the certificate %s", pki.Fingerprint(got)[:16])
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("waiting for PostgreSQL to load the new server certificate: %w", err)
		case <-time.After(p.cfg.ReadyPoll):
		}
	}
}

// Ping checks that the Nomad API answers a read.
func (p *Provisioner) Ping(ctx context.Context) error { return p.nomad.Ping(ctx) }

func isNotFound(err error) bool { return nomad.IsNotFound(err) }
