// Command pgbroker runs the Open Service Broker for managed PostgreSQL on
// Nomad. Configuration comes from the environment (see README.md and package
// config); an invalid value stops it at start with one line naming the
// variable.
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
	"github.com/pgbroker/pgbroker/store"
	"github.com/pgbroker/pgbroker/worker"
)

func main() {
	cfg, err := config.Load()
	if err != nil {
		fmt.Fprintln(os.Stderr, "pgbroker: invalid configuration:", err)
		os.Exit(2)
	}
	log := newLogger(cfg.LogLevel)
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, cfg, log); err != nil {
		log.Error("pgbroker stopped", slog.String("error", err.Error()))
		os.Exit(1)
	}
}

func newLogger(level string) *slog.Logger {
	var l slog.Level
	_ = l.UnmarshalText([]byte(level)) // config.Load checked it
	return logging.New(os.Stderr, l)
}

// loadCA reads (or makes, at first start) the CA, retrying while Nomad does
// not answer so a broker started before Nomad waits for it.
func loadCA(ctx context.Context, prov *provisioner.Provisioner, cfg config.Config, log *slog.Logger) error {
	for {
		attempt, cancel := context.WithTimeout(ctx, 10*time.Second)
		err := prov.LoadCA(attempt, cfg.CACertFile, cfg.CAKeyFile)
		cancel()
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

func run(ctx context.Context, cfg config.Config, log *slog.Logger) error {
	cat, err := catalog.Load(cfg.CatalogFile)
	if err != nil {
		return fmt.Errorf("load catalog: %w", err)
	}
	if cfg.CatalogGUIDs {
		cat.PublishGUIDs(cfg.BrokerName)
	}
	st, err := store.Open(ctx, cfg.DatabaseURL)
	if err != nil {
		return err
	}
	defer st.Close()
	if err := st.Migrate(ctx); err != nil {
		return err
	}
	st.StartStatusCache(ctx)
	deployment, err := st.DeploymentID(ctx)
	if err != nil {
		return err
	}
	nomadCfg := api.DefaultConfig()
	nomadCfg.Address, nomadCfg.SecretID = cfg.NomadAddr, cfg.NomadToken
	// Every call carries a context, but parsing does not: bound it too, so a
	// hung Nomad (network partition, stopped process) never hangs a worker.
	nomadCfg.HttpClient = cleanhttp.DefaultPooledClient()
	nomadCfg.HttpClient.Timeout = 30 * time.Second
	nomadClient, err := api.NewClient(nomadCfg)
	if err != nil {
		return fmt.Errorf("create Nomad client: %w", err)
	}
	uid, gid, err := cfg.PostgresIDs()
	if err != nil {
		return err
	}
	var (
		dumps    backup.Storage
		dumpsS3  *backup.S3Config
		storeErr error
	)
	if cfg.BackupS3Endpoint != "" {
		dumpsS3 = &backup.S3Config{Endpoint: cfg.BackupS3Endpoint, Region: cfg.BackupS3Region, Bucket: cfg.BackupS3Bucket,
			Prefix: cfg.BackupS3Prefix, AccessKeyID: cfg.BackupS3AccessKeyID, SecretAccessKey: cfg.BackupS3SecretAccessKey,
			PartSizeMiB: cfg.BackupS3PartSizeMiB}
		dumps, storeErr = backup.NewS3(*dumpsS3)
	} else {
		dumps, storeErr = backup.NewFilesystem(cfg.BackupDirectory())
	}
	if storeErr != nil {
		return fmt.Errorf("backup storage: %w", storeErr)
	}
	pitrS3, err := pitrS3(cfg)
	if err != nil {
		return err
	}
	etcdCA, err := cfg.EtcdCACertificates()
	if err != nil {
		return err
	}
	prov := provisioner.New(nomadClient, provisioner.Config{
		Driver: cfg.NomadDriver, Datacenters: cfg.NomadDatacenters, HostNetwork: cfg.HostNetwork, Etcd: cfg.Etcd(), NodeNetworks: cfg.NodeNetworks,
		EtcdCA: etcdCA, EtcdUsername: cfg.EtcdUsername, EtcdPassword: cfg.EtcdPassword,
		DataRoot: cfg.DataRoot, PublicHost: cfg.PublicHost, BindingSSLMode: cfg.BindingSSLMode, BrokerName: cfg.BrokerName,
		Deployment: deployment,
		BackupDir:  cfg.BackupDirectory(), BackupUser: cfg.BackupUser, BackupS3: dumpsS3, PITRRepo: cfg.PITRRepository(), PITRS3: pitrS3,
		GatewayCPUMHz: cfg.GatewayCPUMHz, GatewayMemoryMiB: cfg.GatewayMemoryMiB,
		PostgresUID: uid, PostgresGID: gid, CertLifetime: cfg.CertLifetime, CertRenewBefore: cfg.CertRenewBefore,
	}, log)
	if err := loadCA(ctx, prov, cfg, log); err != nil {
		return err
	}
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
	lo, hi, _ := cfg.PortRange()
	dashboardBase, _ := cfg.DashboardBase() // config.Load checked it
	// What the front doors ask of the instances' databases (bind, members,
	// data size, users, extensions), on stored instances.
	syncCalls := instances.New(prov, cat)
	b := broker.New(cat, st, runner.Enqueue, syncCalls, store.PortRange{Min: lo, Max: hi}, log).WithPITR(cfg.PITR()).WithHA(len(cfg.Etcd()) > 0).
		WithDashboardURL(func(id string) string { return dashboard.URL(dashboardBase, id) }).
		WithMaximumPollingDuration(workerCfg.VerdictWithin())
	handler := httpapi.NewRouter(b, httpapi.Options{
		Username: cfg.Username, Password: cfg.Password, MaxBodyBytes: cfg.MaxRequestBodySize, Log: log,
		Management: mgmtapi.New(mgmtapi.Options{
			Store: st, Catalog: cat, Users: syncCalls, Extensions: syncCalls, Dumps: dumps,
			EnqueueOp: runner.Enqueue, EnqueueBackup: runner.EnqueueBackup,
			MaxAge: cfg.BackupMaxAge, PITR: cfg.PITR(), WriteTimeout: cfg.HTTPWriteTimeout, Log: log,
		}).Handler(),
		Metrics:   metrics.Handler(st.Backups(), log),
		Dashboard: dashboard.Handler(),
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
	go gateway.New(nomad.New(nomadClient, cfg.BrokerName, deployment), gateway.Config{Deployment: deployment}, log).
		Run(ctx, cfg.GatewayCheckInterval)
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
