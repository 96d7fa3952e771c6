package acceptance

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
)

// stateServer is a PostgreSQL server of the test's own for the broker's
// state, so the test may stop and restart it without touching the stack's.
type stateServer struct {
	dir, port string
}

func newStateServer(t *testing.T) *stateServer {
	t.Helper()
	dir, err := os.MkdirTemp("", "pgbroker-statedb-")
	if err != nil {
		t.Fatal(err)
	}
	_ = os.Chmod(dir, 0o777)
	_, port, _ := strings.Cut(freeAddr(t), ":")
	s := &stateServer{dir: dir, port: port}
	s.pg(t, "initdb", "-D", s.data(), "-U", "postgres", "--auth=trust", "--no-sync")
	s.pg(t, "pg_ctl", "-D", s.data(), "-w", "-l", filepath.Join(dir, "log"),
		"-o", "-p "+port+" -k "+dir+" -c listen_addresses=127.0.0.1", "start")
	t.Cleanup(func() {
		_ = exec.Command("runuser", "-u", "postgres", "--", "/usr/lib/postgresql/15/bin/pg_ctl", "-D", s.data(), "-m", "immediate", "stop").Run()
		os.RemoveAll(dir)
	})
	return s
}

func (s *stateServer) data() string { return filepath.Join(s.dir, "data") }

func (s *stateServer) url() string {
	return fmt.Sprintf("postgres://postgres@127.0.0.1:%s/postgres?sslmode=disable", s.port)
}

func (s *stateServer) pg(t *testing.T, tool string, args ...string) {
	t.Helper()
	cmd := exec.Command("runuser", append([]string{"-u", "postgres", "--", "/usr/lib/postgresql/15/bin/" + tool}, args...)...)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("%s %v: %v\n%s", tool, args, err, out)
	}
}

// TestStateDatabaseRestartBrokerReconnects: the state database goes away:
// /readyz says so; it comes back: the broker reconnects by itself and
// provisions again.
func TestStateDatabaseRestartBrokerReconnects(t *testing.T) {
	srv := newStateServer(t)
	b := newBroker(t, "PGBROKER_DATABASE_URL="+srv.url())
	c := b.client()
	first := uuid.NewString()
	provision(t, c, first, "postgresql-sandbox")

	srv.pg(t, "pg_ctl", "-D", srv.data(), "-m", "fast", "-w", "stop")
	waitFor(t, 10*time.Second, "/readyz to report the state database", func() bool {
		status, body := b.raw("GET", "/readyz", "", nil)
		return status == 503 && strings.Contains(body, `"state_database"`) && strings.Contains(body, `"nomad":"ok"`)
	})
	if status, body := b.raw("GET", "/v2/service_instances/"+first+"/last_operation", "", nil); status != 500 || !strings.Contains(body, "state database") {
		t.Fatalf("last_operation while the state database is down: %d %s, want 500 naming the state database", status, body)
	}
	srv.pg(t, "pg_ctl", "-D", srv.data(), "-w", "-l", filepath.Join(srv.dir, "log"),
		"-o", "-p "+srv.port+" -k "+srv.dir+" -c listen_addresses=127.0.0.1", "start")
	waitFor(t, 30*time.Second, "/readyz to recover", func() bool {
		status, _ := b.raw("GET", "/readyz", "", nil)
		return status == 200
	})
	second := uuid.NewString()
	provision(t, c, second, "postgresql-sandbox")
	deprovision(t, c, first, "postgresql-sandbox")
	deprovision(t, c, second, "postgresql-sandbox")
	assertGone(t, first)
	assertGone(t, second)
}
