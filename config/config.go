// Package config reads the broker's configuration from the environment
// (kelseyhightower/envconfig, prefix PGBROKER_) and checks it, so that a bad
// value stops the broker at start with one line naming the variable.
package config

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"os/user"
	"path"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/kelseyhightower/envconfig"

	"github.com/pgbroker/pgbroker/pgversion"
)

// Config is every setting of the broker. Each field's variable is
// PGBROKER_<NAME_IN_SNAKE_CASE>; DATABASE_URL, CATALOG_FILE, NOMAD_ADDR and
// NOMAD_TOKEN are also read unprefixed, as their tools name them.
type Config struct {
	Listen      string `split_words:"true" desc:"host:port the HTTP server listens on; unset: :$PORT when PORT is set (Cloud Foundry), else 127.0.0.1:8080"`
	Username    string `split_words:"true" required:"true" desc:"basic-auth user platforms use"`
	Password    string `split_words:"true" required:"true" desc:"basic-auth password platforms use"`
	DatabaseURL string `envconfig:"DATABASE_URL" required:"true" desc:"state database (PostgreSQL) URL"`
	CatalogFile string `envconfig:"CATALOG_FILE" desc:"YAML or JSON catalog replacing the embedded one"`

	NomadAddr            string        `envconfig:"NOMAD_ADDR" default:"http://127.0.0.1:4646" desc:"Nomad HTTP API"`
	NomadToken           string        `envconfig:"NOMAD_TOKEN" desc:"Nomad ACL token"`
	NomadDriver          string        `split_words:"true" default:"raw_exec" desc:"job driver profile: raw_exec or docker"`
	NomadDatacenters     []string      `split_words:"true" default:"*" desc:"comma-separated datacenters jobs run in"`
	HostNetwork          string        `split_words:"true" default:"default" desc:"Nomad host network ports bind to"`
	DataRoot             string        `split_words:"true" required:"true" desc:"directory on every Nomad client holding data directories (owned by postgres)"`
	GatewayPorts         string        `split_words:"true" default:"35000-35999" desc:"inclusive range of static gateway ports"`
	PublicHost           string        `split_words:"true" desc:"host put in credentials; default: the gateway's Nomad address"`
	BindingSSLMode       string        `envconfig:"BINDING_SSLMODE" default:"require" desc:"sslmode of uri, DATABASE_URL, jdbcUrl and read_only_uri in binding credentials: require (encrypted, connects as handed out, server not verified) or verify-full (the app must write ca_certificate to a file); the verify-full forms are in the credentials either way"`
	EtcdEndpoints        []string      `split_words:"true" desc:"comma-separated host:port of the etcd cluster Patroni uses (Business plans), reached over HTTPS; empty: Business plans are refused"`
	NodeNetworks         []string      `split_words:"true" default:"0.0.0.0/0,::/0" desc:"comma-separated CIDRs the nodes of a Business cluster connect to each other from: replication is admitted from these only (and needs a node certificate and the replication password)"`
	EtcdCAFile           string        `envconfig:"ETCD_CA_FILE" desc:"PEM CA certificate(s) etcd's server certificate chains to; read by the broker and handed to the node jobs (required with PGBROKER_ETCD_ENDPOINTS)"`
	EtcdUsername         string        `split_words:"true" default:"root" desc:"etcd user the broker authenticates as: creates each Business instance's etcd user and role, deletes its keys (needs etcd's root role)"`
	EtcdPassword         string        `split_words:"true" desc:"password of PGBROKER_ETCD_USERNAME (required with PGBROKER_ETCD_ENDPOINTS)"`
	PatroniTTL           int           `envconfig:"PATRONI_TTL" default:"7" desc:"Patroni's ttl in seconds for new Business clusters (loop_wait 1, retry_timeout (ttl-1)/2 rounded down): a hung leader loses its lock after this; a leader that cannot renew within retry_timeout steps down (README \"Business plans\"); 5 to 60 (at 4, retry_timeout 1 s: a hung leader was never replaced here)"`
	GatewayCPUMHz        int           `envconfig:"GATEWAY_CPU_MHZ" default:"100" desc:"CPU of one gateway (HAProxy) in MHz"`
	GatewayMemoryMiB     int           `envconfig:"GATEWAY_MEMORY_MIB" default:"64" desc:"memory of one gateway in MiB"`
	BrokerName           string        `split_words:"true" default:"pgbroker" desc:"name of this deployment, stamped in job Meta; orphan sweeps only touch jobs carrying it"`
	CatalogGUIDs         bool          `split_words:"true" desc:"publish service and plan ids as GUIDs derived from PGBROKER_BROKER_NAME, for several deployments on one platform; catalog ids keep working in requests"`
	ReapInterval         time.Duration `split_words:"true" default:"1m" desc:"how often orphan Nomad jobs are swept"`
	OrphanGrace          time.Duration `split_words:"true" default:"1h" desc:"an orphan job is removed this long after first seen"`
	BackupTimeBase       time.Duration `split_words:"true" default:"15m" desc:"time limit of one dump, restore or base backup, from its start: this plus PGBROKER_BACKUP_TIME_PER_GIB per GiB of the plan's disk; past it the job is stopped, then the backup recorded failed"`
	BackupTimePerGiB     time.Duration `envconfig:"BACKUP_TIME_PER_GIB" default:"4m" desc:"what each GiB of the plan's disk adds to PGBROKER_BACKUP_TIME_BASE"`
	ReconcileInterval    time.Duration `split_words:"true" default:"30s" desc:"how often (and once at start) the jobs and Variables of every instance are compared with the state database, and what Nomad lost is put back (README \"Reconcile\"); 0 turns it off"`
	GatewayCheckInterval time.Duration `split_words:"true" default:"10s" desc:"how often each gateway's rendered configuration is compared with its instance's nodes; one out of step for 5s is restarted"`
	TLSCertFile          string        `split_words:"true" desc:"PEM certificate: serve HTTPS (with PGBROKER_TLS_KEY_FILE)"`
	TLSKeyFile           string        `split_words:"true" desc:"PEM private key of PGBROKER_TLS_CERT_FILE"`
	ExternalURL          string        `split_words:"true" desc:"http(s) URL users reach this broker at, base of each instance's dashboard_url; default: http(s)://PGBROKER_LISTEN"`

	SecretsKey              string        `split_words:"true" desc:"base64 of 32 random bytes (head -c32 /dev/urandom | base64): the key that encrypts the copies of instances' secrets and of the CA kept in the state database; required (or PGBROKER_SECRETS_KEY_FILE); back it up apart from the state database"`
	SecretsKeyFile          string        `split_words:"true" desc:"file holding PGBROKER_SECRETS_KEY"`
	CACertFile              string        `envconfig:"CA_CERT_FILE" desc:"PEM CA certificate signing instances' server certificates (with PGBROKER_CA_KEY_FILE); default: a CA made at first start, kept in a Nomad Variable"`
	CAKeyFile               string        `envconfig:"CA_KEY_FILE" desc:"PEM private key of PGBROKER_CA_CERT_FILE"`
	CertLifetime            time.Duration `split_words:"true" default:"2160h" desc:"validity of an instance's server certificate"`
	CertRenewBefore         time.Duration `split_words:"true" default:"720h" desc:"a server certificate expiring within this is re-issued"`
	CertRenewInterval       time.Duration `split_words:"true" default:"1h" desc:"how often server certificates are checked for renewal"`
	PostgresUID             int           `envconfig:"POSTGRES_UID" default:"-1" desc:"numeric uid of user postgres on the Nomad clients; default: 999 with docker, else this machine's postgres user"`
	PostgresGID             int           `envconfig:"POSTGRES_GID" default:"-1" desc:"numeric gid of that user"`
	PostgresVersions        string        `split_words:"true" default:"15.18=/usr/lib/postgresql/15/bin" desc:"PostgreSQL versions offered and the directory of each one's binaries on the Nomad clients, comma-separated version=directory (15.18=/usr/lib/postgresql/15/bin,15.20=/opt/postgresql-15.20/bin); new instances get the newest minor of the first entry's major, which the catalog's maintenance_info names"`
	BackupDir               string        `split_words:"true" desc:"directory on the Nomad clients (and readable by the broker) holding dumps, owned by PGBROKER_BACKUP_USER and not writable by postgres; default: <DATA_ROOT>-backups, beside the data root"`
	BackupUser              string        `split_words:"true" default:"pgbroker-backup" desc:"user the dump and restore jobs run as on the Nomad clients (raw_exec: a name; docker: uid[:gid]); owns PGBROKER_BACKUP_DIR; never root"`
	BackupS3Endpoint        string        `envconfig:"BACKUP_S3_ENDPOINT" desc:"S3-compatible endpoint, http(s)://host[:port]: dumps live in S3 instead of BACKUP_DIR"`
	BackupS3Region          string        `envconfig:"BACKUP_S3_REGION" default:"us-east-1" desc:"S3 signing region"`
	BackupS3Bucket          string        `envconfig:"BACKUP_S3_BUCKET" desc:"S3 bucket of the dumps (required with BACKUP_S3_ENDPOINT)"`
	BackupS3Prefix          string        `envconfig:"BACKUP_S3_PREFIX" desc:"prefix of every dump's object name"`
	BackupS3AccessKeyID     string        `envconfig:"BACKUP_S3_ACCESS_KEY_ID" desc:"S3 access key id"`
	BackupS3SecretAccessKey string        `envconfig:"BACKUP_S3_SECRET_ACCESS_KEY" desc:"S3 secret access key"`
	BackupS3PartSizeMiB     int           `envconfig:"BACKUP_S3_PART_SIZE_MIB" default:"32" desc:"part size of a dump's multipart upload in MiB (5 to 5120): a dump may grow to 10,000 parts, 312 GiB at 32; the dump job holds two parts in memory"`
	PITRRepo                string        `envconfig:"PITR_REPO" desc:"directory on the Nomad clients of the pgBackRest repository (WAL archive, base backups); default <DATA_ROOT>/pgbackrest with raw_exec, off with docker; \"off\" turns PITR off"`
	PITRS3Endpoint          string        `envconfig:"PITR_S3_ENDPOINT" desc:"S3-compatible endpoint, https://host[:port]: pgBackRest's repository lives in S3 instead of PITR_REPO (which must then be unset)"`
	PITRS3Region            string        `envconfig:"PITR_S3_REGION" default:"us-east-1" desc:"S3 signing region of the pgBackRest repository"`
	PITRS3Bucket            string        `envconfig:"PITR_S3_BUCKET" desc:"S3 bucket of the pgBackRest repository (required with PITR_S3_ENDPOINT)"`
	PITRS3Prefix            string        `envconfig:"PITR_S3_PREFIX" default:"pgbackrest" desc:"prefix of the repository's objects in the bucket (pgBackRest repo1-path)"`
	PITRS3AccessKeyID       string        `envconfig:"PITR_S3_ACCESS_KEY_ID" desc:"S3 access key id of the pgBackRest repository"`
	PITRS3SecretAccessKey   string        `envconfig:"PITR_S3_SECRET_ACCESS_KEY" desc:"S3 secret access key of the pgBackRest repository"`
	PITRS3CAFile            string        `envconfig:"PITR_S3_CA_FILE" desc:"PEM CA certificate(s) the S3 endpoint's certificate chains to, read by the broker and handed to the jobs; default: the system's CAs"`
	BackupWorkers           int           `split_words:"true" default:"2" desc:"backups (dumps and base backups) running at once across every broker on the state database; the rest wait in the queue"`
	BackupScheduleTick      time.Duration `split_words:"true" default:"1m" desc:"how often due daily dumps are looked for"`
	BackupRetentionInterval time.Duration `split_words:"true" default:"1h" desc:"how often retention sweeps every instance's backups"`
	BackupMaxAge            time.Duration `split_words:"true" default:"26h" desc:"a last successful dump older than this makes an instance's backups unhealthy"`

	MetricsInterval         time.Duration `split_words:"true" default:"15s" desc:"how often every instance's container figures are sampled for the dashboard's plots and /metrics: the last hour is kept at this step; at least 1s and dividing 5m"`
	MetricsDatabaseInterval time.Duration `split_words:"true" default:"5m" desc:"how often each instance's database figures (connections, sizes) are sampled, spread over the rounds: each read is a TLS and SCRAM login; at least PGBROKER_METRICS_INTERVAL"`

	Workers             int           `split_words:"true" default:"8" desc:"operations carried out at once"`
	AttemptTimeout      time.Duration `split_words:"true" default:"5m" desc:"one attempt of an operation"`
	RescueAfter         time.Duration `split_words:"true" default:"6m" desc:"an attempt older than this is taken as crashed and retried; > ATTEMPT_TIMEOUT"`
	TakeoverAfter       time.Duration `split_words:"true" default:"20s" desc:"an attempt whose broker has not written its heartbeat for this long is continued by another broker (or the same one restarted); at least 4s"`
	OperationDeadline   time.Duration `split_words:"true" default:"30m" desc:"an operation unfinished after this fails"`
	MaxRetryDelay       time.Duration `split_words:"true" default:"30s" desc:"longest pause between attempts"`
	ShutdownTimeout     time.Duration `split_words:"true" default:"30s" desc:"graceful shutdown bound"`
	LogLevel            string        `split_words:"true" default:"info" desc:"debug, info, warn or error"`
	MaxRequestBodySize  int64         `split_words:"true" default:"1048576" desc:"largest request body in bytes"`
	HTTPWriteTimeout    time.Duration `envconfig:"HTTP_WRITE_TIMEOUT" default:"60s" desc:"longest time to write a response; a dump download only fails after this long without progress"`
	DashboardSessionTTL time.Duration `envconfig:"DASHBOARD_SESSION_TTL" default:"1h" desc:"how long a dashboard login lasts before the user logs in again"`
}

// Load reads the environment and checks every value. Errors name the variable.
func Load() (Config, error) {
	var c Config
	if err := envconfig.Process("pgbroker", &c); err != nil {
		return Config{}, friendly(err)
	}
	listen, err := listenAddress(c.Listen, os.Getenv("PORT"))
	if err != nil {
		return Config{}, err
	}
	c.Listen = listen
	return c, c.check()
}

// DefaultListen is the listen address when neither PGBROKER_LISTEN nor PORT
// is set.
const DefaultListen = "127.0.0.1:8080"

// listenAddress is PGBROKER_LISTEN when set; else every interface on PORT,
// the port a platform such as Cloud Foundry routes to the app (its only
// way to hand one out); else DefaultListen. A PORT that is not a port from 1
// to 65535 is an error naming PORT.
func listenAddress(listen, port string) (string, error) {
	switch {
	case listen != "":
		return listen, nil
	case port == "":
		return DefaultListen, nil
	}
	if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
		return "", fmt.Errorf("PORT %q must be a port from 1 to 65535 (or set PGBROKER_LISTEN)", port)
	}
	return ":" + port, nil
}

var s3Prefix = regexp.MustCompile(`^[A-Za-z0-9._/-]*$`)

// BackupDirectory is BackupDir, or <DataRoot>-backups when unset: a sibling
// of the data root, outside it, so that user postgres (which owns the data
// root) cannot plant links in it that a dump job or the broker would follow.
func (c Config) BackupDirectory() string {
	if c.BackupDir != "" {
		return c.BackupDir
	}
	return path.Clean(c.DataRoot) + "-backups"
}

// PITR reports whether point-in-time recovery is on: pgBackRest's repository
// is a directory (PITRRepository) or an S3 bucket (PITRS3).
func (c Config) PITR() bool { return c.PITRS3Endpoint != "" || c.PITRRepository() != "" }

// PITRRepository is the pgBackRest repository directory on the clients, ""
// when point-in-time recovery is off or the repository is in S3
// (PITRS3Endpoint): PITRRepo, or <DataRoot>/pgbackrest with the raw_exec
// driver (Debian's pgbackrest on the clients) when unset.
func (c Config) PITRRepository() string {
	switch {
	case c.PITRRepo == "off" || c.PITRS3Endpoint != "":
		return ""
	case c.PITRRepo != "":
		return c.PITRRepo
	case c.NomadDriver == "raw_exec":
		return path.Join(c.DataRoot, "pgbackrest")
	}
	return ""
}

// PortRange parses GatewayPorts ("min-max").
func (c Config) PortRange() (int, int, error) {
	lo, hi, ok := strings.Cut(c.GatewayPorts, "-")
	if !ok {
		return 0, 0, errors.New(`PGBROKER_GATEWAY_PORTS must look like "35000-35999"`)
	}
	min, err1 := strconv.Atoi(strings.TrimSpace(lo))
	max, err2 := strconv.Atoi(strings.TrimSpace(hi))
	if err1 != nil || err2 != nil || min < 1024 || max > 65535 || min > max {
		return 0, 0, fmt.Errorf("PGBROKER_GATEWAY_PORTS %q must be two ports from 1024 to 65535, low first", c.GatewayPorts)
	}
	return min, max, nil
}

func (c Config) check() error {
	if _, _, err := net.SplitHostPort(c.Listen); err != nil {
		return fmt.Errorf("PGBROKER_LISTEN %q is not host:port: %v", c.Listen, err)
	}
	if c.NomadDriver != "raw_exec" && c.NomadDriver != "docker" {
		return fmt.Errorf("PGBROKER_NOMAD_DRIVER %q must be raw_exec or docker", c.NomadDriver)
	}
	if !strings.HasPrefix(c.DataRoot, "/") {
		return fmt.Errorf("PGBROKER_DATA_ROOT %q must be an absolute path", c.DataRoot)
	}
	if c.BackupDir != "" && (!strings.HasPrefix(c.BackupDir, "/") || path.Clean(c.BackupDir) != c.BackupDir || c.BackupDir == "/") {
		return fmt.Errorf("PGBROKER_BACKUP_DIR %q must be a clean absolute path other than /", c.BackupDir)
	}
	if err := checkBackupUser(c.BackupUser); err != nil {
		return err
	}
	if _, err := c.Postgres(); err != nil {
		return err
	}
	for _, n := range c.NodeNetworks {
		if _, _, err := net.ParseCIDR(n); err != nil || strings.TrimSpace(n) != n {
			return fmt.Errorf("PGBROKER_NODE_NETWORKS entry %q must be a CIDR such as 10.0.0.0/16", n)
		}
	}
	if len(c.NodeNetworks) == 0 {
		return errors.New("PGBROKER_NODE_NETWORKS must list at least one CIDR (0.0.0.0/0,::/0 admits every address)")
	}
	if c.BackupS3Endpoint != "" {
		u, err := url.Parse(c.BackupS3Endpoint)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || (u.Path != "" && u.Path != "/") {
			return fmt.Errorf("PGBROKER_BACKUP_S3_ENDPOINT %q must be http(s)://host[:port]", c.BackupS3Endpoint)
		}
		for name, v := range map[string]string{"PGBROKER_BACKUP_S3_BUCKET": c.BackupS3Bucket,
			"PGBROKER_BACKUP_S3_ACCESS_KEY_ID": c.BackupS3AccessKeyID, "PGBROKER_BACKUP_S3_SECRET_ACCESS_KEY": c.BackupS3SecretAccessKey} {
			if v == "" {
				return fmt.Errorf("%s is required with PGBROKER_BACKUP_S3_ENDPOINT", name)
			}
		}
		if !s3Prefix.MatchString(c.BackupS3Prefix) {
			return fmt.Errorf("PGBROKER_BACKUP_S3_PREFIX %q may hold letters, digits, dots, dashes, underscores and slashes only", c.BackupS3Prefix)
		}
	}
	if c.PITRRepo != "" && c.PITRRepo != "off" && (!strings.HasPrefix(c.PITRRepo, "/") || path.Clean(c.PITRRepo) != c.PITRRepo || c.PITRRepo == "/") {
		return fmt.Errorf("PGBROKER_PITR_REPO %q must be off or a clean absolute path other than /", c.PITRRepo)
	}
	if err := c.checkPITRS3(); err != nil {
		return err
	}
	if err := c.checkEtcd(); err != nil {
		return err
	}
	if _, _, err := c.PortRange(); err != nil {
		return err
	}
	if _, err := c.DashboardBase(); err != nil {
		return err
	}
	for name, v := range map[string]string{"PGBROKER_USERNAME": c.Username, "PGBROKER_PASSWORD": c.Password, "PGBROKER_DATABASE_URL": c.DatabaseURL} {
		if v == "" {
			return fmt.Errorf("%s must not be empty", name)
		}
	}
	checks := []struct {
		name string
		bad  bool
		want string
	}{
		{"PGBROKER_WORKERS", c.Workers < 1, "at least 1"},
		{"PGBROKER_ATTEMPT_TIMEOUT", c.AttemptTimeout < time.Second, "at least 1s"},
		{"PGBROKER_RESCUE_AFTER", c.RescueAfter <= c.AttemptTimeout, "longer than PGBROKER_ATTEMPT_TIMEOUT"},
		{"PGBROKER_TAKEOVER_AFTER", c.TakeoverAfter < 4*time.Second, "at least 4s"},
		{"PGBROKER_OPERATION_DEADLINE", c.OperationDeadline < c.AttemptTimeout, "at least PGBROKER_ATTEMPT_TIMEOUT"},
		{"PGBROKER_MAX_RETRY_DELAY", c.MaxRetryDelay < time.Second, "at least 1s"},
		{"PGBROKER_REAP_INTERVAL", c.ReapInterval < time.Second, "at least 1s"},
		{"PGBROKER_GATEWAY_CHECK_INTERVAL", c.GatewayCheckInterval < time.Second, "at least 1s"},
		{"PGBROKER_RECONCILE_INTERVAL", c.ReconcileInterval != 0 && c.ReconcileInterval < time.Second, "0 (off) or at least 1s"},
		{"PGBROKER_PATRONI_TTL", c.PatroniTTL < 5 || c.PatroniTTL > 60, "5 to 60 (seconds)"},
		{"PGBROKER_BACKUP_TIME_BASE", c.BackupTimeBase < time.Second, "at least 1s"},
		{"PGBROKER_BACKUP_TIME_PER_GIB", c.BackupTimePerGiB < 0, "zero or more"},
		{"PGBROKER_BACKUP_WORKERS", c.BackupWorkers < 1, "at least 1"},
		{"PGBROKER_BACKUP_SCHEDULE_TICK", c.BackupScheduleTick < time.Second || c.BackupScheduleTick > time.Hour, "from 1s to 1h"},
		{"PGBROKER_BACKUP_RETENTION_INTERVAL", c.BackupRetentionInterval < time.Second, "at least 1s"},
		{"PGBROKER_BACKUP_MAX_AGE", c.BackupMaxAge < time.Minute, "at least 1m"},
		{"PGBROKER_METRICS_INTERVAL", c.MetricsInterval < time.Second || (5*time.Minute)%c.MetricsInterval != 0, "at least 1s and dividing 5m (15s, 30s, 1m)"},
		{"PGBROKER_METRICS_DATABASE_INTERVAL", c.MetricsDatabaseInterval < c.MetricsInterval, "at least PGBROKER_METRICS_INTERVAL"},
		{"PGBROKER_GATEWAY_CPU_MHZ", c.GatewayCPUMHz < 1, "at least 1"},
		{"PGBROKER_GATEWAY_MEMORY_MIB", c.GatewayMemoryMiB < 16, "at least 16"},
		{"PGBROKER_ORPHAN_GRACE", c.OrphanGrace < 0, "zero or more"},
		{"PGBROKER_TLS_KEY_FILE", (c.TLSCertFile == "") != (c.TLSKeyFile == ""), "set together with PGBROKER_TLS_CERT_FILE"},
		{"PGBROKER_CA_KEY_FILE", (c.CACertFile == "") != (c.CAKeyFile == ""), "set together with PGBROKER_CA_CERT_FILE"},
		{"PGBROKER_CERT_LIFETIME", c.CertLifetime < time.Minute, "at least 1m"},
		{"PGBROKER_CERT_RENEW_BEFORE", c.CertRenewBefore <= 0 || c.CertRenewBefore >= c.CertLifetime, "more than 0 and less than PGBROKER_CERT_LIFETIME"},
		{"PGBROKER_CERT_RENEW_INTERVAL", c.CertRenewInterval < time.Second, "at least 1s"},
		{"PGBROKER_POSTGRES_GID", (c.PostgresUID < 0) != (c.PostgresGID < 0), "set together with PGBROKER_POSTGRES_UID"},
		{"PGBROKER_BROKER_NAME", !brokerName.MatchString(c.BrokerName), "1 to 64 letters, digits, _ or - (it names the CA's Nomad Variable)"},
		{"PGBROKER_MAX_REQUEST_BODY_SIZE", c.MaxRequestBodySize < 1024, "at least 1024"},
		{"PGBROKER_HTTP_WRITE_TIMEOUT", c.HTTPWriteTimeout < time.Second, "at least 1s"},
		{"PGBROKER_DASHBOARD_SESSION_TTL", c.DashboardSessionTTL < time.Minute || c.DashboardSessionTTL > 24*time.Hour, "from 1m to 24h"},
		{"PGBROKER_BACKUP_S3_PART_SIZE_MIB", c.BackupS3PartSizeMiB < 5 || c.BackupS3PartSizeMiB > 5120, "from 5 to 5120 (S3's part size limits)"},
		{"PGBROKER_LOG_LEVEL", !oneOf(c.LogLevel, "debug", "info", "warn", "error"), "debug, info, warn or error"},
		{"PGBROKER_BINDING_SSLMODE", !oneOf(c.BindingSSLMode, "require", "verify-full"), "require or verify-full"},
	}
	for _, ch := range checks {
		if ch.bad {
			return fmt.Errorf("%s must be %s", ch.name, ch.want)
		}
	}
	return nil
}

var brokerName = regexp.MustCompile(`^[A-Za-z0-9_-]{1,64}$`)

// PostgresIDs returns the uid and gid of user postgres on the Nomad clients
// (the owner of the rendered TLS key): PGBROKER_POSTGRES_UID and _GID when
// set; else 999, the postgres image's, with the docker driver; else the ids of
// this machine's postgres user (dev and test, where the broker runs beside the
// client). Errors name the variables to set.
func (c Config) PostgresIDs() (uid, gid int, err error) {
	if c.PostgresUID >= 0 {
		return c.PostgresUID, c.PostgresGID, nil
	}
	if c.NomadDriver == "docker" {
		return 999, 999, nil
	}
	u, err := user.Lookup("postgres")
	if err != nil {
		return 0, 0, errors.New("PGBROKER_POSTGRES_UID and PGBROKER_POSTGRES_GID are not set and this machine has no postgres user: set them to the ids of postgres on the Nomad clients")
	}
	uid, err1 := strconv.Atoi(u.Uid)
	gid, err2 := strconv.Atoi(u.Gid)
	if err1 != nil || err2 != nil {
		return 0, 0, errors.New("PGBROKER_POSTGRES_UID and PGBROKER_POSTGRES_GID are not set and this machine's postgres user has non-numeric ids: set them")
	}
	return uid, gid, nil
}

func oneOf(s string, options ...string) bool {
	for _, o := range options {
		if s == o {
			return true
		}
	}
	return false
}

// friendly turns envconfig's errors into one line naming the variable,
// without echoing values that could be secrets.
func friendly(err error) error {
	var pe *envconfig.ParseError
	if errors.As(err, &pe) {
		return fmt.Errorf("%s: cannot parse as %s", pe.KeyName, pe.TypeName)
	}
	msg := err.Error()
	if rest, ok := strings.CutPrefix(msg, "required key "); ok {
		key, _, _ := strings.Cut(rest, " ")
		return fmt.Errorf("%s is required", key)
	}
	return err
}

// backupUser is a user name (useradd's rule) or uid[:gid].
var backupUser = regexp.MustCompile(`^([a-z_][a-z0-9_-]{0,31}|[0-9]{1,10}(:[0-9]{1,10})?)$`)

// checkBackupUser refuses a PGBROKER_BACKUP_USER that is not a user name
// or uid[:gid], or that is root: batch jobs never run as root.
func checkBackupUser(u string) error {
	uid, _, _ := strings.Cut(u, ":")
	if !backupUser.MatchString(u) || u == "root" || strings.Trim(uid, "0") == "" {
		return fmt.Errorf("PGBROKER_BACKUP_USER %q must be a user name or uid[:gid] other than root (uid 0)", u)
	}
	return nil
}

// Postgres is PGBROKER_POSTGRES_VERSIONS parsed: the versions offered and
// their bin directories. Errors name the variable.
func (c Config) Postgres() (pgversion.Offered, error) {
	o, err := pgversion.ParseOffered(c.PostgresVersions)
	if err != nil {
		return pgversion.Offered{}, fmt.Errorf("PGBROKER_POSTGRES_VERSIONS %q: %v", c.PostgresVersions, err)
	}
	return o, nil
}
