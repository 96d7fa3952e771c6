package acceptance

import (
	"context"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/pgbroker/pgbroker/naming"
)

// TestAGatewayThatMissedANodeChangeIsRestarted: a gateway whose HAProxy
// routes to no node while the node runs (what a Nomad template watch that
// missed the node's new registration, or a reload Nomad never ran, leaves
// behind: both seen after point-in-time restores, every connection ended in
// <NOSRV> for minutes) is
// restarted by the broker (package gateway) within its check interval plus
// 5 s, and DATABASE_URL connects again through the same address.
func TestAGatewayThatMissedANodeChangeIsRestarted(t *testing.T) {
	t.Parallel()
	b := newBroker(t, "PGBROKER_GATEWAY_CHECK_INTERVAL=2s")
	c := b.client()
	id := uuid.NewString()
	provision(t, c, id, starterPlan)
	t.Cleanup(func() { deprovision(t, c, id, starterPlan) })
	url := bind(t, c, id, uuid.NewString(), starterPlan, nil)["DATABASE_URL"].(string)
	connect(t, url)

	gws := runningAllocs(t, naming.GatewaysJobID(naming.ShortID(id)))
	if len(gws) != 1 {
		t.Fatalf("%d running gateways, want the Starter plan's one", len(gws))
	}
	cfgPath := gatewayTaskFile(t, gws[0].ID, "haproxy.loaded.cfg")
	cfg, err := os.ReadFile(cfgPath)
	if err != nil {
		t.Fatal(err)
	}
	servers := regexp.MustCompile(`(?m)^\s*server .*\n`)
	if len(servers.FindAll(cfg, -1)) != 1 {
		t.Fatalf("the gateway's configuration lists %d servers, want 1:\n%s", len(servers.FindAll(cfg, -1)), cfg)
	}
	// What a missed template update or a lost reload leaves: HAProxy runs a
	// backend without the node (the file it loads, then SIGUSR2 to its
	// master, as reload.sh does).
	if err := os.WriteFile(cfgPath, servers.ReplaceAll(cfg, nil), 0o644); err != nil {
		t.Fatal(err)
	}
	pid, err := os.ReadFile(gatewayTaskFile(t, gws[0].ID, "haproxy.pid"))
	if err != nil {
		t.Fatal(err)
	}
	master, err := strconv.Atoi(strings.TrimSpace(string(pid)))
	if err != nil {
		t.Fatal(err)
	}
	if err := syscall.Kill(master, syscall.SIGUSR2); err != nil {
		t.Fatal(err)
	}
	broken := time.Now()
	waitFor(t, 10*time.Second, "DATABASE_URL to fail once the gateway lost its node (the tampering to take)",
		func() bool { return connects(url) != nil })
	waitFor(t, time.Minute, "DATABASE_URL to connect again through the restarted gateway",
		func() bool { return connects(url) == nil })
	t.Logf("DATABASE_URL connects again %.1f s after the gateway lost its node", time.Since(broken).Seconds())
	if !strings.Contains(b.logs.String(), "fell behind the node service") {
		t.Error("the broker log does not say why it restarted the gateway")
	}
	if restarts := gatewayRestarts(t, gws[0].ID); restarts != 1 {
		t.Errorf("the gateway's task restarted %d times, want 1 (in place, same allocation)", restarts)
	}
}

// gatewayTaskFile is the path of a file in the haproxy task's local
// directory of gateway allocation allocID, on whichever stack client runs it.
func gatewayTaskFile(t *testing.T, allocID, name string) string {
	t.Helper()
	nomadDir := filepath.Join(filepath.Dir(dataRoot), "nomad")
	for _, pattern := range []string{"data", "*/data"} {
		matches, _ := filepath.Glob(filepath.Join(nomadDir, pattern, "alloc", allocID, "haproxy", "local", name))
		if len(matches) == 1 {
			return matches[0]
		}
	}
	t.Fatalf("no %s of gateway allocation %s under %s", name, allocID, nomadDir)
	return ""
}

func gatewayRestarts(t *testing.T, allocID string) uint64 {
	t.Helper()
	a, _, err := nomadClient(t).Allocations().Info(allocID, nil)
	if err != nil {
		t.Fatal(err)
	}
	if st := a.TaskStates["haproxy"]; st != nil {
		return st.Restarts
	}
	return 0
}

// connects reports how a connection with databaseURL ends: nil when it is
// made and answers a ping.
func connects(databaseURL string) error {
	conn, err := tryConnect(databaseURL)
	if err != nil {
		return err
	}
	defer conn.Close(context.Background())
	return conn.Ping(context.Background())
}
