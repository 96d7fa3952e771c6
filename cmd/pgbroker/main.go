// Command pgbroker runs the Open Service Broker for managed PostgreSQL on
// Nomad. Configuration comes from the environment (see README.md and package
// config); an invalid value stops it at start with one line naming the
// variable. `pgbroker ca reissue` replaces a lost CA (README.md "Secrets and
// the CA").
package main

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"os/signal"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/hashicorp/go-cleanhttp"
	"github.com/hashicorp/nomad/api"

	"github.com/pgbroker/pgbroker/backup"
	"github.com/pgbroker/pgbroker/broker"
	"github.com/pgbroker/pgbroker/catalog"
	"github.com/pgbroker/pgbroker/config"
	"github.com/pgbroker/pgbroker/dashboard"
	"github.com/pgbroker/pgbroker/gateway"
	"github.com/pgbroker/pgbroker/httpapi"
	"github.com/pgbroker/pgbroker/instances"
	"github.com/pgbroker/pgbroker/logging"
	"github.com/pgbroker/pgbroker/metrics"
	"github.com/pgbroker/pgbroker/mgmtapi"
	"github.com/pgbroker/pgbroker/nomad"
	"github.com/pgbroker/pgbroker/provisioner"
	"github.com/pgbroker/pgbroker/reconcile"
	"github.com/pgbroker/pgbroker/sampler"
	"github.com/pgbroker/pgbroker/sealed"
	"github.com/pgbroker/pgbroker/sealedcopy"
	"github.com/pgbroker/pgbroker/servercert"
	"github.com/pgbroker/pgbroker/stats"
	"github.com/pgbroker/pgbroker/store"
	"github.com/pgbroker/pgbroker/webauth"
	"github.com/pgbroker/pgbroker/worker"
)

func main() {
	cfg, err := config.Load()
	if err != nil {
		fmt.Fprintln(os.Stderr, "pgbroker: invalid configuration:", err)
		os.Exit(2)
	}
	key, err := sealed.LoadKey(cfg.SecretsKey, cfg.SecretsKeyFile)
	if err != nil {
		fmt.Fprintln(os.Stderr, "pgbroker: invalid configuration:", err)
		os.Exit(2)
	}
	log := newLogger(cfg.LogLevel)
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	switch args := os.Args[1:]; {
	case len(args) == 0:
		err = run(ctx, cfg, key, log)
	case slices.Equal(args, []string{"ca", "reissue"}):
		err = reissueCA(ctx, cfg, key, log)
	default:
		fmt.Fprintf(os.Stderr, "pgbroker: unknown command %q; usage: pgbroker (serve) | pgbroker ca reissue\n", strings.Join(args, " "))
		os.Exit(2)
	}
	if err != nil {
		log.Error("pgbroker stopped", slog.String("error", err.Error()))
		os.Exit(1)
	}
}

func newLogger(level string) *slog.Logger {
	var l slog.Level
	_ = l.UnmarshalText([]byte(level)) // config.Load checked it
	return logging.New(os.Stderr, l)
}

// loadCA reads the CA (restored from its sealed copy when Nomad lost it,
// made at first start), retrying while Nomad does not answer so a broker
// started before Nomad waits for it.
func loadCA(ctx context.Context, prov *provisioner.Provisioner, cfg config.Config, src servercert.CASource, log *slog.Logger) error {
	src.CertFile, src.KeyFile = cfg.CACertFile, cfg.CAKeyFile
	for {
		attempt, cancel := context.WithTimeout(ctx, 10*time.Second)
		origin, err := prov.LoadCA(attempt, src)
		cancel()
		if err == nil {
			log.Info("CA loaded", slog.String("from", string(origin)))
		}
		if err == nil || cfg.CACertFile != "" || ctx.Err() != nil {
			return err
		}
		var transport *url.Error
		if !errors.As(err, &transport) {
			return err // Nomad answered, or the CA is bad: not an outage
		}
		log.Warn("waiting for Nomad to load the CA", slog.String("error", err.Error()))
		select {
		case <-ctx.Done():
			return err
		case <-time.After(2 * time.Second):
		}
	}
}

// deployment is what both commands open: the state database, Nomad (its
// Variables sealed into the state database) and the provisioner.
type deployment struct {
	st      *store.Store
	id      string // store.DeploymentID
	cluster *nomad.Cluster
	vars    *sealedcopy.Variables
	prov    *provisioner.Provisioner
}

// open opens the state database (migrated), the Nomad client and the
// provisioner. The caller closes d.st.
func open(ctx context.Context, cfg config.Config, key *sealed.Key, log *slog.Logger) (d deployment, err error) {
	d.st, err = store.Open(ctx, cfg.DatabaseURL)
	if err != nil {
		return d, err
	}
	defer func() {
		if err != nil {
			d.st.Close()
		}
	}()
	if err := d.st.Migrate(ctx); err != nil {
		return d, err
	}
	if d.id, err = d.st.DeploymentID(ctx); err != nil {
		return d, err
	}
	nomadCfg := api.DefaultConfig()
	nomadCfg.Address, nomadCfg.SecretID = cfg.NomadAddr, cfg.NomadToken
	// Every call carries a context, but parsing does not: bound it too, so a
	// hung Nomad (network partition, stopped process) never hangs a worker.
	nomadCfg.HttpClient = cleanhttp.DefaultPooledClient()
	nomadCfg.HttpClient.Timeout = 30 * time.Second
	nomadClient, err := api.NewClient(nomadCfg)
	if err != nil {
		return d, fmt.Errorf("create Nomad client: %w", err)
	}
	d.cluster = nomad.New(nomadClient, cfg.BrokerName, d.id)
	d.vars = sealedcopy.New(d.cluster, d.st.SealedVariables(), key, log)
	d.prov, err = newProvisioner(cfg, d, log)
	return d, err
}

// newProvisioner is the provisioner of cfg on d's Nomad.
func newProvisioner(cfg config.Config, d deployment, log *slog.Logger) (*provisioner.Provisioner, error) {
	uid, gid, err := cfg.PostgresIDs()
	if err != nil {
		return nil, err
	}
	pitrS3, err := pitrS3(cfg)
	if err != nil {
		return nil, err
	}
	etcdCA, err := cfg.EtcdCACertificates()
	if err != nil {
		return nil, err
	}
	versions, err := cfg.Postgres()
	if err != nil {
		return nil, err
	}
	return provisioner.New(d.cluster, d.vars, provisioner.Config{
		Driver: cfg.NomadDriver, Datacenters: cfg.NomadDatacenters, HostNetwork: cfg.HostNetwork, Etcd: cfg.Etcd(), NodeNetworks: cfg.NodeNetworks,
		EtcdCA: etcdCA, EtcdUsername: cfg.EtcdUsername, EtcdPassword: cfg.EtcdPassword, PatroniTTL: cfg.PatroniTTL,
		DataRoot: cfg.DataRoot, PublicHost: cfg.PublicHost, BindingSSLMode: cfg.BindingSSLMode, BrokerName: cfg.BrokerName,
		Deployment: d.id,
		BackupDir:  cfg.BackupDirectory(), BackupUser: cfg.BackupUser, BackupS3: dumpsS3(cfg), PITRRepo: cfg.PITRRepository(), PITRS3: pitrS3,
		GatewayCPUMHz: cfg.GatewayCPUMHz, GatewayMemoryMiB: cfg.GatewayMemoryMiB,
		PostgresUID: uid, PostgresGID: gid, PostgresBinDirs: versions.BinDirs(), CertLifetime: cfg.CertLifetime, CertRenewBefore: cfg.CertRenewBefore,
	}, log), nil
}

// dumpsS3 is the S3 location of dumps, nil when they live in a directory.
func dumpsS3(cfg config.Config) *backup.S3Config {
	if cfg.BackupS3Endpoint == "" {
		return nil
	}
	return &backup.S3Config{Endpoint: cfg.BackupS3Endpoint, Region: cfg.BackupS3Region, Bucket: cfg.BackupS3Bucket,
		Prefix: cfg.BackupS3Prefix, AccessKeyID: cfg.BackupS3AccessKeyID, SecretAccessKey: cfg.BackupS3SecretAccessKey,
		PartSizeMiB: cfg.BackupS3PartSizeMiB}
}

// reissueCA replaces the CA in Nomad and its sealed copy with a new one
// (`pgbroker ca reissue`). Running brokers keep the old one until restarted;
// at start each re-issues every instance's server certificate.
func reissueCA(ctx context.Context, cfg config.Config, key *sealed.Key, log *slog.Logger) error {
	if cfg.CACertFile != "" {
		return errors.New("ca reissue: PGBROKER_CA_CERT_FILE is set, so the CA comes from files: replace them instead")
	}
	d, err := open(ctx, cfg, key, log)
	if err != nil {
		return err
	}
	defer d.st.Close()
	if _, err := d.prov.ReissueCA(ctx); err != nil {
		return fmt.Errorf("ca reissue: %w", err)
	}
	log.Warn("a new CA replaced the old one", slog.String("variable", servercert.CAVariablePath(cfg.BrokerName)))
	fmt.Println("pgbroker: a new CA is in " + servercert.CAVariablePath(cfg.BrokerName) + " and its sealed copy.\n" +
		"Restart every broker of this deployment: at start each re-issues every instance's server certificate.\n" +
		"Credentials handed out before carry the old CA: apps verifying the server must bind again.")
	return nil
}

// sealExisting writes the sealed copy of every Variable of this
// deployment's instances that has none (Variables made before copies were
// kept, or a crash between Nomad's write and the copy's). Idempotent; a
// failure is logged and retried at the next start, the Variables themselves
// being intact.
func sealExisting(ctx context.Context, d deployment, log *slog.Logger) {
	shorts, err := d.st.Instances().UndeletedShortIDs(ctx)
	if err == nil {
		prefixes := make([]string, 0, 2*len(shorts))
		for _, short := range shorts {
			prefixes = append(prefixes, "nomad/jobs/pg-"+short+"-", "pgbroker/instances/"+short+"/")
		}
		var n int
		n, err = d.vars.SealMissing(ctx, prefixes...)
		if n > 0 {
			log.Info("sealed copies written for Variables that had none or a stale one", slog.Int("count", n))
		}
	}
	if err != nil {
		log.Warn("seal the Variables of existing instances", slog.String("error", err.Error()))
	}
}

func run(ctx context.Context, cfg config.Config, key *sealed.Key, log *slog.Logger) error {
	cat, err := catalog.Load(cfg.CatalogFile)
	if err != nil {
		return fmt.Errorf("load catalog: %w", err)
	}
	if cfg.CatalogGUIDs {
		cat.PublishGUIDs(cfg.BrokerName)
	}
	versions, _ := cfg.Postgres() // config.Load checked it
	cat.OfferPostgres(versions.Newest())
	d, err := open(ctx, cfg, key, log)
	if err != nil {
		return err
	}
	st, prov, deployment := d.st, d.prov, d.id
	defer st.Close()
	st.StartStatusCache(ctx)
	var dumps backup.Storage
	if s3 := dumpsS3(cfg); s3 != nil {
		dumps, err = backup.NewS3(*s3)
	} else {
		dumps, err = backup.NewFilesystem(cfg.BackupDirectory())
	}
	if err != nil {
		return fmt.Errorf("backup storage: %w", err)
	}
	firstStart := func(ctx context.Context) (bool, error) {
		shorts, err := st.Instances().UndeletedShortIDs(ctx)
		return len(shorts) == 0, err
	}
	if err := loadCA(ctx, prov, cfg, servercert.CASource{Copies: d.vars, MayMint: firstStart}, log); err != nil {
		return err
	}
	sealExisting(ctx, d, log)
	workerCfg := worker.Config{
		Workers: cfg.Workers, AttemptTimeout: cfg.AttemptTimeout, RescueAfter: cfg.RescueAfter, TakeoverAfter: cfg.TakeoverAfter,
		Deadline: cfg.OperationDeadline, MaxRetryDelay: cfg.MaxRetryDelay,
		ReapInterval: cfg.ReapInterval, OrphanGrace: cfg.OrphanGrace, CertRenewInterval: cfg.CertRenewInterval,
		BackupWorkers: cfg.BackupWorkers, ScheduleTick: cfg.BackupScheduleTick, RetentionInterval: cfg.BackupRetentionInterval,
		PITR: cfg.PITR(), Deployment: deployment,
		BatchLimits: backup.Limits{Base: cfg.BackupTimeBase, PerGiB: cfg.BackupTimePerGiB},
	}
	runner, err := worker.New(st, cat, prov, dumps, workerCfg, log)
	if err != nil {
		return err
	}
	repairs := newReconciler(d, cat, workerCfg, log)
	lo, hi, _ := cfg.PortRange()
	dashboardBase, _ := cfg.DashboardBase() // config.Load checked it
	// What the front doors ask of the instances' databases (bind, members,
	// data size, users, extensions), on stored instances.
	syncCalls := instances.New(prov, cat).WithAllocations(d.cluster, stats.NewPeaks())
	figures, err := sampler.New(syncCalls, st.Instances(), st.Metrics(), sampler.Config{
		Interval: cfg.MetricsInterval, DatabaseInterval: cfg.MetricsDatabaseInterval}, log)
	if err != nil {
		return fmt.Errorf("metrics sampler: %w", err)
	}
	b := broker.New(cat, st, runner.Enqueue, syncCalls, store.PortRange{Min: lo, Max: hi}, log).WithPITR(cfg.PITR()).WithHA(len(cfg.Etcd()) > 0).WithPostgres(versions).
		WithDashboardURL(func(id string) string { return dashboard.URL(dashboardBase, id) }).
		WithMaximumPollingDuration(workerCfg.VerdictWithin())
	origin, _ := webauth.OriginOf(dashboardBase) // config.Load checked it
	sessions := webauth.NewSessions(key.Derive("dashboard sessions"), cfg.DashboardSessionTTL, strings.HasPrefix(dashboardBase, "https://"))
	sessions.Revalidate(dashboard.Check(st, syncCalls), 30*time.Second)
	handler := httpapi.NewRouter(b, httpapi.Options{
		Username: cfg.Username, Password: cfg.Password, MaxBodyBytes: cfg.MaxRequestBodySize, Log: log,
		Sessions: sessions, Origin: origin,
		Management: mgmtapi.New(mgmtapi.Options{
			Store: st, Catalog: cat, Users: syncCalls, Extensions: syncCalls, Queries: syncCalls, Members: syncCalls, Dumps: dumps,
			Stats: syncCalls, Metrics: st.Metrics(), Tiers: figures.Tiers(),
			EnqueueOp: runner.Enqueue, EnqueueBackup: runner.EnqueueBackup,
			MaxAge: cfg.BackupMaxAge, PITR: cfg.PITR(), Versions: versions, WriteTimeout: cfg.HTTPWriteTimeout, Log: log,
		}).Handler(),
		Metrics: metrics.Handler(st.Backups(), log,
			append(repairs.Metrics().Collectors(), metrics.InstanceCollector(figures))...),
		Dashboard: func(api http.Handler) http.Handler {
			d, _ := dashboard.New(dashboard.Options{Store: st, Logins: syncCalls, API: api, Sessions: sessions,
				Limiter: webauth.NewLimiter(webauth.DefaultLoginLimits), Base: dashboardBase, Log: log})
			return d.Handler()
		},
		Checks: []httpapi.Check{
			{Name: "state_database", Fn: st.Ping},
			{Name: "nomad", Fn: prov.Ping},
			{Name: "orphan_sweep", Fn: worker.SweepCheck(st, workerCfg.ReapInterval)},
		},
	})
	srv := &http.Server{
		Addr: cfg.Listen, Handler: handler,
		TLSConfig:         &tls.Config{MinVersion: tls.VersionTLS12},
		ReadHeaderTimeout: 10 * time.Second, ReadTimeout: 30 * time.Second,
		WriteTimeout: cfg.HTTPWriteTimeout, IdleTimeout: 120 * time.Second, MaxHeaderBytes: 64 << 10,
	}
	if err := runner.Start(ctx); err != nil {
		return fmt.Errorf("start workers: %w", err)
	}
	// Gateways whose configuration fell behind their nodes are restarted
	// (package gateway); every broker runs one, a restart is idempotent.
	go gateway.New(d.cluster, gateway.Config{Deployment: deployment}, log).
		Run(ctx, cfg.GatewayCheckInterval)
	if cfg.ReconcileInterval > 0 {
		go repairs.Run(ctx, cfg.ReconcileInterval)
	}
	go figures.Run(ctx)
	errc := make(chan error, 1)
	go func() {
		if cfg.TLSCertFile != "" {
			errc <- srv.ListenAndServeTLS(cfg.TLSCertFile, cfg.TLSKeyFile)
			return
		}
		errc <- srv.ListenAndServe()
	}()
	log.Info("pgbroker listening", slog.String("addr", cfg.Listen), slog.Bool("https", cfg.TLSCertFile != ""),
		slog.String("driver", cfg.NomadDriver))
	select {
	case err := <-errc:
		return fmt.Errorf("serve HTTP: %w", err)
	case <-ctx.Done():
	}
	log.Info("shutting down")
	shutdown, cancel := context.WithTimeout(context.Background(), cfg.ShutdownTimeout)
	defer cancel()
	if err := srv.Shutdown(shutdown); err != nil && !errors.Is(err, http.ErrServerClosed) {
		log.Warn("HTTP shutdown", slog.String("error", err.Error()))
	}
	if err := runner.Stop(shutdown); err != nil {
		log.Warn("worker shutdown", slog.String("error", err.Error()))
	}
	return nil
}

// newReconciler is the reconcile loop of d: one broker of the deployment
// at a time (store.ReconcileLock) puts back what Nomad lost; a repair is
// given as long as one attempt of an operation.
func newReconciler(d deployment, cat *catalog.Catalog, w worker.Config, log *slog.Logger) *reconcile.Reconciler {
	lock := func(ctx context.Context) (reconcile.Lock, bool, error) {
		l, ok, err := d.st.TryReconcileLock(ctx)
		if !ok {
			return nil, ok, err
		}
		return l, true, nil
	}
	return reconcile.New(reconcile.Deps{Instances: d.st.Instances(), Lock: lock, Nomad: d.cluster,
		Copies: d.st.SealedVariables(), Restorer: d.vars, Provisioner: d.prov, Plans: cat}, w.AttemptTimeout, log)
}

// pitrS3 returns pgBackRest's S3 repository of the PGBROKER_PITR_S3_*
// settings, nil when PGBROKER_PITR_S3_ENDPOINT is unset. Errors name the
// variable (config.Load checked them already).
func pitrS3(cfg config.Config) (*backup.PITRS3, error) {
	loc, ok, err := cfg.PITRS3()
	if err != nil || !ok {
		return nil, err
	}
	ca, err := cfg.PITRS3CACertificates()
	if err != nil {
		return nil, err
	}
	return &backup.PITRS3{Host: loc.Host, Port: loc.Port, Region: cfg.PITRS3Region, Bucket: cfg.PITRS3Bucket, Path: loc.Path,
		CAPEM: ca, AccessKeyID: cfg.PITRS3AccessKeyID, SecretAccessKey: cfg.PITRS3SecretAccessKey}, nil
}
