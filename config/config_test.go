package config

import (
	"os"
	"strings"
	"testing"
	"time"
)

func setValid(t *testing.T) {
	t.Setenv("PGBROKER_USERNAME", "broker")
	t.Setenv("PGBROKER_PASSWORD", "secret-value")
	t.Setenv("PGBROKER_DATABASE_URL", "postgres://x@127.0.0.1/pgbroker")
	t.Setenv("PGBROKER_DATA_ROOT", "/var/lib/pgbroker")
	t.Setenv("PGBROKER_LISTEN", "")
	t.Setenv("PORT", "")
}

func TestLoadDefaults(t *testing.T) {
	setValid(t)
	c, err := Load()
	if err != nil {
		t.Fatal(err)
	}
	if c.Listen != "127.0.0.1:8080" || c.NomadDriver != "raw_exec" || c.Workers != 8 ||
		c.HTTPWriteTimeout != time.Minute || c.BackupS3PartSizeMiB != 32 {
		t.Fatalf("defaults not applied: %+v", c)
	}
	if lo, hi, err := c.PortRange(); err != nil || lo != 35000 || hi != 35999 {
		t.Fatalf("port range = %d-%d, %v", lo, hi, err)
	}
}

// TestBindingSSLModeDefaultsToRequireAndTakesVerifyFull: unset, the
// credentials' default URLs connect as handed out (require); an operator
// may choose verify-full.
func TestBindingSSLModeDefaultsToRequireAndTakesVerifyFull(t *testing.T) {
	for _, tc := range []struct{ env, want string }{{"", "require"}, {"require", "require"}, {"verify-full", "verify-full"}} {
		t.Run(tc.want+"/"+tc.env, func(t *testing.T) {
			setValid(t)
			if tc.env != "" {
				t.Setenv("PGBROKER_BINDING_SSLMODE", tc.env)
			}
			c, err := Load()
			if err != nil || c.BindingSSLMode != tc.want {
				t.Fatalf("PGBROKER_BINDING_SSLMODE=%q: BindingSSLMode %q (%v), want %q", tc.env, c.BindingSSLMode, err, tc.want)
			}
		})
	}
}

func TestLoadUnprefixedDatabaseURL(t *testing.T) {
	setValid(t)
	t.Setenv("PGBROKER_DATABASE_URL", "")
	os.Unsetenv("PGBROKER_DATABASE_URL")
	t.Setenv("DATABASE_URL", "postgres://y@127.0.0.1/other")
	c, err := Load()
	if err != nil {
		t.Fatal(err)
	}
	if c.DatabaseURL != "postgres://y@127.0.0.1/other" {
		t.Fatalf("DatabaseURL = %q", c.DatabaseURL)
	}
}

func TestLoadRejectsBadValueNamingTheVariable(t *testing.T) {
	cases := []struct{ name, key, value string }{
		{"driver", "PGBROKER_NOMAD_DRIVER", "qemu"},
		{"ports", "PGBROKER_GATEWAY_PORTS", "40000-30000"},
		{"ports syntax", "PGBROKER_GATEWAY_PORTS", "many"},
		{"workers", "PGBROKER_WORKERS", "0"},
		{"workers type", "PGBROKER_WORKERS", "lots"},
		{"duration", "PGBROKER_ATTEMPT_TIMEOUT", "soon"},
		{"rescue", "PGBROKER_RESCUE_AFTER", "1s"},
		{"listen", "PGBROKER_LISTEN", "8080"},
		{"data root", "PGBROKER_DATA_ROOT", "relative/dir"},
		{"log level", "PGBROKER_LOG_LEVEL", "loud"},
		{"missing password", "PGBROKER_PASSWORD", ""},
		{"CA key without certificate", "PGBROKER_CA_KEY_FILE", "/etc/pgbroker/ca.key"},
		{"renewal window not shorter than the lifetime", "PGBROKER_CERT_RENEW_BEFORE", "2160h"},
		{"certificate lifetime too short", "PGBROKER_CERT_LIFETIME", "30s"},
		{"renewal interval", "PGBROKER_CERT_RENEW_INTERVAL", "0s"},
		{"postgres gid without uid", "PGBROKER_POSTGRES_GID", "104"},
		{"broker name unfit for a Variable path", "PGBROKER_BROKER_NAME", "my broker"},
		{"backup dir", "PGBROKER_BACKUP_DIR", "backups"},
		{"backup user root", "PGBROKER_BACKUP_USER", "root"},
		{"backup user uid 0", "PGBROKER_BACKUP_USER", "0"},
		{"backup user uid 0 with a group", "PGBROKER_BACKUP_USER", "000:1000"},
		{"backup user empty", "PGBROKER_BACKUP_USER", ""},
		{"backup user with a space", "PGBROKER_BACKUP_USER", "pg backup"},
		{"backup workers", "PGBROKER_BACKUP_WORKERS", "0"},
		{"schedule tick", "PGBROKER_BACKUP_SCHEDULE_TICK", "2h"},
		{"backup max age", "PGBROKER_BACKUP_MAX_AGE", "1s"},
		{"s3 endpoint", "PGBROKER_BACKUP_S3_ENDPOINT", "s3.example.com"},
		{"s3 part below S3's minimum", "PGBROKER_BACKUP_S3_PART_SIZE_MIB", "4"},
		{"s3 part above S3's maximum", "PGBROKER_BACKUP_S3_PART_SIZE_MIB", "5121"},
		{"write timeout", "PGBROKER_HTTP_WRITE_TIMEOUT", "500ms"},
		{"pitr repo", "PGBROKER_PITR_REPO", "../repo"},
		{"etcd endpoint without port", "PGBROKER_ETCD_ENDPOINTS", "10.0.0.5:2379,10.0.0.6"},
		{"binding sslmode that does not encrypt", "PGBROKER_BINDING_SSLMODE", "disable"},
		{"binding sslmode that may fall back to plaintext", "PGBROKER_BINDING_SSLMODE", "prefer"},
		{"binding sslmode verify-ca", "PGBROKER_BINDING_SSLMODE", "verify-ca"},
		{"patroni ttl whose retry_timeout would be 1 s", "PGBROKER_PATRONI_TTL", "4"},
		{"patroni ttl over a minute", "PGBROKER_PATRONI_TTL", "61"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			setValid(t)
			t.Setenv(tc.key, tc.value)
			_, err := Load()
			if err == nil {
				t.Fatalf("%s=%q accepted", tc.key, tc.value)
			}
			if !strings.Contains(err.Error(), tc.key) || strings.Contains(err.Error(), "\n") {
				t.Fatalf("error %q does not name %s on one line", err, tc.key)
			}
			if strings.Contains(err.Error(), "secret-value") {
				t.Fatalf("error %q leaks the password", err)
			}
		})
	}
}

func TestPostgresIDs(t *testing.T) {
	setValid(t)
	t.Setenv("PGBROKER_POSTGRES_UID", "101")
	t.Setenv("PGBROKER_POSTGRES_GID", "104")
	c, err := Load()
	if err != nil {
		t.Fatal(err)
	}
	if uid, gid, err := c.PostgresIDs(); uid != 101 || gid != 104 || err != nil {
		t.Fatalf("PostgresIDs = %d, %d, %v", uid, gid, err)
	}
	setValid(t)
	t.Setenv("PGBROKER_POSTGRES_UID", "")
	t.Setenv("PGBROKER_POSTGRES_GID", "")
	os.Unsetenv("PGBROKER_POSTGRES_UID")
	os.Unsetenv("PGBROKER_POSTGRES_GID")
	t.Setenv("PGBROKER_NOMAD_DRIVER", "docker")
	c, _ = Load()
	if uid, gid, err := c.PostgresIDs(); uid != 999 || gid != 999 || err != nil {
		t.Fatalf("docker PostgresIDs = %d, %d, %v", uid, gid, err)
	}
}

func TestS3EndpointNeedsBucketAndKeys(t *testing.T) {
	setValid(t)
	t.Setenv("PGBROKER_BACKUP_S3_ENDPOINT", "https://s3.example.com")
	t.Setenv("PGBROKER_BACKUP_S3_BUCKET", "dumps")
	t.Setenv("PGBROKER_BACKUP_S3_ACCESS_KEY_ID", "AKID")
	_, err := Load()
	if err == nil || !strings.Contains(err.Error(), "PGBROKER_BACKUP_S3_SECRET_ACCESS_KEY") {
		t.Fatalf("Load = %v, want an error naming PGBROKER_BACKUP_S3_SECRET_ACCESS_KEY", err)
	}
	t.Setenv("PGBROKER_BACKUP_S3_SECRET_ACCESS_KEY", "s3-secret")
	if _, err := Load(); err != nil {
		t.Fatal(err)
	}
}

// TestBackupDirectoryDefaultsBesideTheDataRoot: the dumps' directory is not
// inside the data root (user postgres owns that one and could plant links
// in it), the pgBackRest repository is (pgBackRest runs as postgres); an
// explicit PGBROKER_BACKUP_DIR still wins.
func TestBackupDirectoryDefaultsBesideTheDataRoot(t *testing.T) {
	setValid(t)
	c, err := Load()
	if err != nil {
		t.Fatal(err)
	}
	if c.BackupDirectory() != "/var/lib/pgbroker-backups" || c.PITRRepository() != "/var/lib/pgbroker/pgbackrest" {
		t.Errorf("backup dir %q, PITR repository %q", c.BackupDirectory(), c.PITRRepository())
	}
	if c.BackupUser != "pgbroker-backup" {
		t.Errorf("backup user %q, want pgbroker-backup", c.BackupUser)
	}
	t.Setenv("PGBROKER_DATA_ROOT", "/var/lib/pgbroker/")
	if c, _ := Load(); c.BackupDirectory() != "/var/lib/pgbroker-backups" {
		t.Errorf("data root with a trailing slash: backup dir %q", c.BackupDirectory())
	}
	t.Setenv("PGBROKER_BACKUP_DIR", "/var/lib/pgbroker/backups")
	t.Setenv("PGBROKER_BACKUP_USER", "1001:1001")
	if c, err := Load(); err != nil || c.BackupDirectory() != "/var/lib/pgbroker/backups" {
		t.Errorf("explicit PGBROKER_BACKUP_DIR: %q, %v", c.BackupDirectory(), err)
	}
	t.Setenv("PGBROKER_NOMAD_DRIVER", "docker")
	if c, _ := Load(); c.PITRRepository() != "" {
		t.Errorf("docker profile: PITR repository %q, want off", c.PITRRepository())
	}
	t.Setenv("PGBROKER_PITR_REPO", "off")
	t.Setenv("PGBROKER_NOMAD_DRIVER", "raw_exec")
	if c, _ := Load(); c.PITRRepository() != "" {
		t.Errorf("PGBROKER_PITR_REPO=off: PITR repository %q", c.PITRRepository())
	}
}

func TestPostgresVersionsDefaultToDebiansPostgreSQL15(t *testing.T) {
	setValid(t)
	t.Setenv("PGBROKER_POSTGRES_VERSIONS", "") // restored after the test; the local stack's environment sets it
	os.Unsetenv("PGBROKER_POSTGRES_VERSIONS")
	c, err := Load()
	if err != nil {
		t.Fatal(err)
	}
	o, err := c.Postgres()
	if err != nil || o.Newest().String() != "15.18" {
		t.Fatalf("newest offered = %v (%v), want 15.18", o.Newest(), err)
	}
	if dir, _ := o.BinDir(o.Newest()); dir != "/usr/lib/postgresql/15/bin" {
		t.Fatalf("bin directory %q", dir)
	}
}

func TestBadPostgresVersionsStopTheBrokerNamingTheVariable(t *testing.T) {
	for _, v := range []string{"15=/usr/lib/postgresql/15/bin", "15.18=bin", "15.18"} {
		setValid(t)
		t.Setenv("PGBROKER_POSTGRES_VERSIONS", v)
		_, err := Load()
		if err == nil || !strings.HasPrefix(err.Error(), "PGBROKER_POSTGRES_VERSIONS") || strings.Contains(err.Error(), "\n") {
			t.Errorf("PGBROKER_POSTGRES_VERSIONS=%q: error %v, want one line naming the variable", v, err)
		}
	}
}
