package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/pgbroker/pgbroker/pki"
)

const testS3Secret = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"

func setValidPITRS3(t *testing.T) {
	setValid(t)
	t.Setenv("PGBROKER_PITR_S3_ENDPOINT", "https://s3.example.com:9000")
	t.Setenv("PGBROKER_PITR_S3_BUCKET", "pitr-repo")
	t.Setenv("PGBROKER_PITR_S3_ACCESS_KEY_ID", "AKIAEXAMPLE")
	t.Setenv("PGBROKER_PITR_S3_SECRET_ACCESS_KEY", testS3Secret)
}

func TestPITRS3SettingsGiveTheRepositoryLocation(t *testing.T) {
	setValidPITRS3(t)
	t.Setenv("PGBROKER_PITR_S3_PREFIX", "/team-a/pgbackrest/")
	c, err := Load()
	if err != nil {
		t.Fatal(err)
	}
	loc, ok, err := c.PITRS3()
	if err != nil || !ok || loc != (PITRS3Location{Host: "s3.example.com", Port: 9000, Path: "/team-a/pgbackrest"}) {
		t.Fatalf("PITRS3() = %+v, %v, %v", loc, ok, err)
	}
	if !c.PITR() || c.PITRRepository() != "" || c.PITRS3Region != "us-east-1" {
		t.Fatalf("PITR() %v, PITRRepository() %q, region %q: want on, no directory, us-east-1", c.PITR(), c.PITRRepository(), c.PITRS3Region)
	}
	if ca, err := c.PITRS3CACertificates(); ca != "" || err != nil {
		t.Fatalf("no CA file: %q, %v", ca, err)
	}

	t.Setenv("PGBROKER_PITR_S3_ENDPOINT", "https://s3.example.com")
	os.Unsetenv("PGBROKER_PITR_S3_PREFIX")
	c, err = Load()
	if err != nil {
		t.Fatal(err)
	}
	if loc, _, _ := c.PITRS3(); loc.Port != 443 || loc.Path != "/pgbackrest" {
		t.Fatalf("default port and prefix: %+v, want 443 and /pgbackrest", loc)
	}
}

func TestPITRS3DefaultsKeepTheDirectoryRepository(t *testing.T) {
	setValid(t)
	c, err := Load()
	if err != nil {
		t.Fatal(err)
	}
	if _, ok, err := c.PITRS3(); ok || err != nil {
		t.Fatalf("PITRS3() without endpoint: %v, %v", ok, err)
	}
	if !c.PITR() || c.PITRRepository() != "/var/lib/pgbroker/pgbackrest" {
		t.Fatalf("PITR() %v, PITRRepository() %q", c.PITR(), c.PITRRepository())
	}
}

func TestPITRS3CAFileKeepsOnlyItsCertificates(t *testing.T) {
	setValidPITRS3(t)
	certPEM, keyPEM, err := pki.NewCA("test S3 CA", time.Hour, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(t.TempDir(), "ca.pem")
	// openssl's "Bag Attributes" text and a key around the certificate: only the certificate is kept.
	if err := os.WriteFile(file, []byte("Bag Attributes {{ oops }}\n"+string(certPEM)+string(keyPEM)), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("PGBROKER_PITR_S3_CA_FILE", file)
	c, err := Load()
	if err != nil {
		t.Fatal(err)
	}
	ca, err := c.PITRS3CACertificates()
	if err != nil || ca != string(certPEM) {
		t.Fatalf("CA certificates %q, %v; want exactly the certificate", ca, err)
	}
}

func TestPITRS3RejectsBadSettingsNamingTheVariable(t *testing.T) {
	dir := t.TempDir()
	notPEM := filepath.Join(dir, "not.pem")
	if err := os.WriteFile(notPEM, []byte("hello"), 0o600); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name   string
		env    map[string]string
		naming string
	}{
		{"plain http", map[string]string{"PGBROKER_PITR_S3_ENDPOINT": "http://s3.example.com"}, "PGBROKER_PITR_S3_ENDPOINT"},
		{"no scheme", map[string]string{"PGBROKER_PITR_S3_ENDPOINT": "s3.example.com"}, "PGBROKER_PITR_S3_ENDPOINT"},
		{"path", map[string]string{"PGBROKER_PITR_S3_ENDPOINT": "https://s3.example.com/bucket"}, "PGBROKER_PITR_S3_ENDPOINT"},
		{"port", map[string]string{"PGBROKER_PITR_S3_ENDPOINT": "https://s3.example.com:70000"}, "PGBROKER_PITR_S3_ENDPOINT"},
		{"user info", map[string]string{"PGBROKER_PITR_S3_ENDPOINT": "https://key:secret@s3.example.com"}, "PGBROKER_PITR_S3_ENDPOINT"},
		{"missing bucket", map[string]string{"PGBROKER_PITR_S3_BUCKET": ""}, "PGBROKER_PITR_S3_BUCKET"},
		{"bucket with a line break", map[string]string{"PGBROKER_PITR_S3_BUCKET": "repo\nrepo1-type=posix"}, "PGBROKER_PITR_S3_BUCKET"},
		{"region", map[string]string{"PGBROKER_PITR_S3_REGION": "us east"}, "PGBROKER_PITR_S3_REGION"},
		{"prefix with ..", map[string]string{"PGBROKER_PITR_S3_PREFIX": "a/../b"}, "PGBROKER_PITR_S3_PREFIX"},
		{"prefix with //", map[string]string{"PGBROKER_PITR_S3_PREFIX": "a//b"}, "PGBROKER_PITR_S3_PREFIX"},
		{"empty prefix", map[string]string{"PGBROKER_PITR_S3_PREFIX": "/"}, "PGBROKER_PITR_S3_PREFIX"},
		{"prefix with a space", map[string]string{"PGBROKER_PITR_S3_PREFIX": "my repo"}, "PGBROKER_PITR_S3_PREFIX"},
		{"missing key id", map[string]string{"PGBROKER_PITR_S3_ACCESS_KEY_ID": ""}, "PGBROKER_PITR_S3_ACCESS_KEY_ID"},
		{"missing secret", map[string]string{"PGBROKER_PITR_S3_SECRET_ACCESS_KEY": ""}, "PGBROKER_PITR_S3_SECRET_ACCESS_KEY"},
		{"secret with a line break", map[string]string{"PGBROKER_PITR_S3_SECRET_ACCESS_KEY": testS3Secret + "\nrepo1-type=posix"}, "PGBROKER_PITR_S3_SECRET_ACCESS_KEY"},
		{"directory repository too", map[string]string{"PGBROKER_PITR_REPO": "/srv/pgbackrest"}, "PGBROKER_PITR_REPO"},
		{"PITR off but S3 set", map[string]string{"PGBROKER_PITR_REPO": "off"}, "PGBROKER_PITR_REPO"},
		{"missing CA file", map[string]string{"PGBROKER_PITR_S3_CA_FILE": filepath.Join(dir, "missing.pem")}, "PGBROKER_PITR_S3_CA_FILE"},
		{"CA file without certificate", map[string]string{"PGBROKER_PITR_S3_CA_FILE": notPEM}, "PGBROKER_PITR_S3_CA_FILE"},
		{"bucket without endpoint", map[string]string{"PGBROKER_PITR_S3_ENDPOINT": ""}, "PGBROKER_PITR_S3_"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			setValidPITRS3(t)
			for k, v := range tc.env {
				t.Setenv(k, v)
			}
			_, err := Load()
			if err == nil {
				t.Fatalf("%v accepted", tc.env)
			}
			if !strings.Contains(err.Error(), tc.naming) || strings.Contains(err.Error(), "\n") {
				t.Fatalf("error %q does not name %s on one line", err, tc.naming)
			}
			if strings.Contains(err.Error(), testS3Secret) {
				t.Fatalf("error %q quotes the secret access key", err)
			}
		})
	}
}
