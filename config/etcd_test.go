package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/pgbroker/pgbroker/pki"
)

const testEtcdPassword = "etcd-root-secret"

// setValidEtcd is setValid with an etcd cluster: endpoints, a CA file
// holding a certificate, the root password.
func setValidEtcd(t *testing.T) (caPEM string) {
	t.Helper()
	setValid(t)
	certPEM, _, err := pki.NewCA("test etcd CA", time.Hour, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(t.TempDir(), "etcd-ca.pem")
	if err := os.WriteFile(file, certPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("PGBROKER_ETCD_ENDPOINTS", "10.0.0.5:2379, 10.0.0.6:2379")
	t.Setenv("PGBROKER_ETCD_CA_FILE", file)
	t.Setenv("PGBROKER_ETCD_USERNAME", "")
	t.Setenv("PGBROKER_ETCD_PASSWORD", testEtcdPassword)
	return string(certPEM)
}

func TestEmptyEtcdEndpointsMeanNoEtcd(t *testing.T) {
	setValid(t)
	t.Setenv("PGBROKER_ETCD_ENDPOINTS", "")
	c, err := Load()
	if err != nil {
		t.Fatal(err)
	}
	if got := c.Etcd(); len(got) != 0 {
		t.Fatalf("Etcd() = %q, want none", got)
	}
}

func TestEtcdSettingsGiveEndpointsCAAndRootUser(t *testing.T) {
	caPEM := setValidEtcd(t)
	os.Unsetenv("PGBROKER_ETCD_USERNAME") // the default
	c, err := Load()
	if err != nil {
		t.Fatal(err)
	}
	if len(c.Etcd()) != 2 || c.Etcd()[1] != "10.0.0.6:2379" {
		t.Errorf("Etcd() = %q, want both endpoints trimmed", c.Etcd())
	}
	if c.EtcdUsername != "root" || c.EtcdPassword != testEtcdPassword {
		t.Errorf("etcd user %q, password set %v; want root and the password", c.EtcdUsername, c.EtcdPassword == testEtcdPassword)
	}
	if ca, err := c.EtcdCACertificates(); err != nil || ca != caPEM {
		t.Errorf("EtcdCACertificates() = %q, %v; want the CA file's certificate", ca, err)
	}
}

// TestEtcdRejectsBadSettingsNamingTheVariable: etcd without TLS or
// authentication is refused at start, the message naming the variable to
// set and never quoting the password.
func TestEtcdRejectsBadSettingsNamingTheVariable(t *testing.T) {
	dir := t.TempDir()
	notPEM := filepath.Join(dir, "not.pem")
	if err := os.WriteFile(notPEM, []byte("hello"), 0o600); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name, key, value, naming string
	}{
		{"endpoint without port", "PGBROKER_ETCD_ENDPOINTS", "10.0.0.5:2379,10.0.0.6", "PGBROKER_ETCD_ENDPOINTS"},
		{"no CA file", "PGBROKER_ETCD_CA_FILE", "", "PGBROKER_ETCD_CA_FILE"},
		{"CA file missing", "PGBROKER_ETCD_CA_FILE", filepath.Join(dir, "absent.pem"), "PGBROKER_ETCD_CA_FILE"},
		{"CA file without a certificate", "PGBROKER_ETCD_CA_FILE", notPEM, "PGBROKER_ETCD_CA_FILE"},
		{"no password", "PGBROKER_ETCD_PASSWORD", "", "PGBROKER_ETCD_PASSWORD"},
		{"no user", "PGBROKER_ETCD_USERNAME", "", "PGBROKER_ETCD_USERNAME"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			setValidEtcd(t)
			t.Setenv("PGBROKER_ETCD_USERNAME", "root")
			t.Setenv(tc.key, tc.value)
			_, err := Load()
			if err == nil || !strings.HasPrefix(err.Error(), tc.naming) {
				t.Fatalf("%s=%q: error %v, want one starting with %s", tc.key, tc.value, err, tc.naming)
			}
			if strings.Contains(err.Error(), testEtcdPassword) {
				t.Fatalf("error quotes the etcd password: %v", err)
			}
		})
	}
}

func TestEtcdCredentialsWithoutEndpointsAreRefused(t *testing.T) {
	setValidEtcd(t)
	t.Setenv("PGBROKER_ETCD_ENDPOINTS", "")
	if _, err := Load(); err == nil || !strings.Contains(err.Error(), "PGBROKER_ETCD_ENDPOINTS is not") {
		t.Fatalf("etcd CA and password without endpoints: %v, want an error naming PGBROKER_ETCD_ENDPOINTS", err)
	}
}
