// Package acceptance drives the real pgbroker binary with a real OSB client
// (sigs.k8s.io/go-open-service-broker-client/v2) against a real Nomad agent
// running real PostgreSQL and HAProxy, and a real state database. Nothing is
// mocked. `make test` brings the local stack up and sets the environment:
//
//	DATABASE_URL        state PostgreSQL (a role allowed to CREATE DATABASE)
//	NOMAD_ADDR          Nomad HTTP API
//	PGBROKER_DATA_ROOT  data root on the Nomad client
//	PGBROKER_ETCD_ENDPOINTS  etcd for Patroni (Business plans), over TLS
//	PGBROKER_ETCD_CA_FILE    its CA; PGBROKER_ETCD_USERNAME, _PASSWORD its root user
//
// When one is missing the suite fails if CI=true and otherwise says why it
// does not run.
package acceptance

import (
	"cmp"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

var (
	brokerBinary string
	stateURL     = os.Getenv("DATABASE_URL")
	nomadAddr    = os.Getenv("NOMAD_ADDR")
	dataRoot     = os.Getenv("PGBROKER_DATA_ROOT")
	etcd         = os.Getenv("PGBROKER_ETCD_ENDPOINTS")
	// backupRoot is the brokers' dump directory: PGBROKER_BACKUP_DIR, else
	// its default beside the data root.
	backupRoot = cmp.Or(os.Getenv("PGBROKER_BACKUP_DIR"), filepath.Clean(dataRoot)+"-backups")
)

func TestMain(m *testing.M) {
	var missing []string
	for name, v := range map[string]string{"DATABASE_URL": stateURL, "NOMAD_ADDR": nomadAddr, "PGBROKER_DATA_ROOT": dataRoot, "PGBROKER_ETCD_ENDPOINTS": etcd,
		"PGBROKER_ETCD_CA_FILE": etcdCAFile, "PGBROKER_ETCD_USERNAME": etcdUsername, "PGBROKER_ETCD_PASSWORD": etcdPassword} {
		if v == "" {
			missing = append(missing, name)
		}
	}
	if os.Getenv("PGBROKER_SECRETS_KEY") == "" && os.Getenv("PGBROKER_SECRETS_KEY_FILE") == "" {
		missing = append(missing, "PGBROKER_SECRETS_KEY_FILE")
	}
	if len(missing) > 0 {
		msg := fmt.Sprintf("acceptance: the local stack is not configured (%v unset); run `make test`", missing)
		if os.Getenv("CI") == "true" {
			fmt.Fprintln(os.Stderr, "FAIL:", msg)
			os.Exit(1)
		}
		fmt.Fprintln(os.Stderr, "SKIP:", msg)
		os.Exit(0)
	}
	dir, err := os.MkdirTemp("", "pgbroker-acceptance-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	brokerBinary = filepath.Join(dir, "pgbroker")
	build := exec.Command("go", "build", "-o", brokerBinary, "../cmd/pgbroker")
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "build pgbroker:", err)
		os.Exit(1)
	}
	before, err := viewStack()
	if err != nil {
		fmt.Fprintln(os.Stderr, "FAIL: read the stack before the tests:", err)
		os.Exit(1)
	}
	code := m.Run()
	if left, err := leftovers(before); err != nil {
		fmt.Fprintln(os.Stderr, "FAIL: read the stack after the tests:", err)
		code = 1
	} else if len(left) > 0 {
		fmt.Fprintf(os.Stderr, "FAIL: the tests left %d thing(s) on the stack:\n  %s\n", len(left), strings.Join(left, "\n  "))
		code = 1
	} else {
		fmt.Fprintln(os.Stderr, "acceptance: the tests left no job, allocation, variable, data directory, etcd key or user, or process behind")
	}
	if leaks := suite.leaks(); leaks > 0 {
		fmt.Fprintf(os.Stderr, "FAIL: %d password(s) handed out by bind appear in broker logs\n", leaks)
		code = 1
	} else {
		fmt.Fprintf(os.Stderr, "acceptance: none of the %d passwords handed out appears in %d broker logs\n", suite.secretCount(), suite.logCount())
	}
	os.RemoveAll(dir)
	os.Exit(code)
}
