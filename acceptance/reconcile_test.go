package acceptance

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/pgbroker/pgbroker/naming"
)

// reconcileInterval is PGBROKER_RECONCILE_INTERVAL of the brokers below
// (every other acceptance broker runs with the loop off).
const reconcileInterval = 3 * time.Second

// loseFromNomad purges the instance's node and gateway jobs (nomad job stop
// -purge) and deletes every one of its Variables, as a Nomad that lost its
// state would have them, and returns the client its node ran on.
func loseFromNomad(t testing.TB, instanceID string) string {
	t.Helper()
	nc := nomadClient(t)
	short := naming.ShortID(instanceID)
	nodes := runningAllocs(t, naming.NodesJobID(short))
	if len(nodes) == 0 {
		t.Fatal("no node allocation running before the loss")
	}
	for _, job := range []string{naming.NodesJobID(short), naming.GatewaysJobID(short)} {
		if _, _, err := nc.Jobs().Deregister(job, true, nil); err != nil {
			t.Fatalf("purge %s: %v", job, err)
		}
	}
	deleted := 0
	for _, prefix := range []string{"nomad/jobs/pg-" + short + "-", "pgbroker/instances/" + short + "/"} {
		metas, _, err := nc.Variables().PrefixList(prefix, nil)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range metas {
			if _, err := nc.Variables().Delete(m.Path, nil); err != nil {
				t.Fatalf("delete Variable %s: %v", m.Path, err)
			}
			deleted++
		}
	}
	if deleted < 2 {
		t.Fatalf("deleted %d Variables; want the nodes Variable and the binding's at least", deleted)
	}
	return nodes[0].NodeID
}

// instanceStatus is GET instance's metadata attribute "status".
func instanceStatus(t testing.TB, b *broker, id string) string {
	t.Helper()
	attrs, err := tryInstanceAttributes(b, id)
	if err != nil {
		return ""
	}
	return attrs["status"]
}

// TestStarterWhoseJobsAndVariablesNomadLostComesBackWithItsData: a Starter
// instance whose jobs are purged and whose Variables are deleted is back
// within the reconcile interval plus its start time, its node and its
// gateway on their former clients, with its rows, and the DATABASE_URL
// handed out before (same host, port, user and password) connects. The
// repair is reported in GET instance and on /metrics.
func TestStarterWhoseJobsAndVariablesNomadLostComesBackWithItsData(t *testing.T) {
	b := newBroker(t, "PGBROKER_RECONCILE_INTERVAL="+reconcileInterval.String())
	id, databaseURL, took := starterWithARow(t, b, "before the loss")

	short := naming.ShortID(id)
	gatewayBefore := runningAllocs(t, naming.GatewaysJobID(short))[0].NodeID
	client := loseFromNomad(t, id)
	lost := time.Now()
	if !refusedWithin(databaseURL, 10*time.Second) {
		t.Fatal("DATABASE_URL connected throughout the 10 s after the purge: the loss was not simulated")
	}
	limit := reconcileInterval + 3*time.Minute
	if err := waitConnects(databaseURL, lost, limit); err != nil {
		t.Fatalf("the DATABASE_URL handed out before does not connect %s after the loss: %v", limit, err)
	}
	back := time.Since(lost)
	t.Logf("back %s after the loss (interval %s); a fresh provision took %s", back.Round(100*time.Millisecond), reconcileInterval, took.Round(100*time.Millisecond))
	if after := waitRunningAllocs(t, naming.GatewaysJobID(short), 1, 30*time.Second)[0].NodeID; after != gatewayBefore {
		t.Errorf("the gateway came back on client %s, not %s", after, gatewayBefore)
	}

	if body, err := keptRow(t, databaseURL); err != nil || body != "before the loss" {
		t.Errorf("row after the repair: %q, %v", body, err)
	}
	if nodes := waitRunningAllocs(t, naming.NodesJobID(naming.ShortID(id)), 1, 30*time.Second); nodes[0].NodeID != client {
		t.Errorf("node allocations after the repair: %d, want 1 on client %s", len(nodes), client)
	}
	waitStatus(t, b, id, func(s string) bool { return s == "running" }, 30*time.Second)
	if !strings.Contains(b.logs.String(), `"msg":"repaired"`) {
		t.Error("the broker's log has no repaired event")
	}
	_, metrics := b.raw(http.MethodGet, "/metrics", "", nil)
	if !strings.Contains(metrics, `pgbroker_reconcile_repairs_total{reason="lost",result="repaired"} 1`) {
		t.Errorf("/metrics lacks one repair: %s", grepLines(metrics, "pgbroker_reconcile"))
	}
}

// starterWithARow provisions a Starter instance (512) on b, binds it,
// writes one row (body) into its table kept, and waits until GET instance
// says "running". It returns the instance id, the binding's DATABASE_URL
// and how long the provision took.
func starterWithARow(t *testing.T, b *broker, body string) (string, string, time.Duration) {
	t.Helper()
	return instanceWithARow(t, b, "postgresql-starter-512", body)
}

// instanceWithARow is starterWithARow on plan.
func instanceWithARow(t *testing.T, b *broker, plan, body string) (string, string, time.Duration) {
	t.Helper()
	c := b.client()
	id := uuid.NewString()
	took := provisionWithin(t, c, id, plan, 5*time.Minute)
	databaseURL := bind(t, c, id, uuid.NewString(), plan, nil)["DATABASE_URL"].(string)
	app := connect(t, databaseURL)
	mustExec(t, app, "CREATE TABLE kept (body text)")
	mustExec(t, app, "INSERT INTO kept VALUES ('"+body+"')")
	app.Close(context.Background())
	waitStatus(t, b, id, func(s string) bool { return s == "running" }, 30*time.Second)
	return id, databaseURL, took
}

// keptRow is the body of the row starterWithARow wrote, read through
// databaseURL.
func keptRow(t *testing.T, databaseURL string) (string, error) {
	t.Helper()
	app := connect(t, databaseURL)
	defer app.Close(context.Background())
	var body string
	err := app.QueryRow(context.Background(), "SELECT body FROM kept").Scan(&body)
	return body, err
}

// waitStatus polls GET instance until ok(status) or limit, and returns the
// last status.
func waitStatus(t *testing.T, b *broker, id string, ok func(string) bool, limit time.Duration) string {
	t.Helper()
	var s string
	for deadline := time.Now().Add(limit); time.Now().Before(deadline); time.Sleep(500 * time.Millisecond) {
		if s = instanceStatus(t, b, id); ok(s) {
			return s
		}
	}
	t.Fatalf("GET instance status %q after %s", s, limit)
	return s
}

// refusedWithin reports whether databaseURL fails to connect at some
// moment within limit, tried every 50 ms: a purged gateway's HAProxy stops
// once its client acts on the purge, a moment after Nomad's servers
// answered it, and the repair registers it again seconds later.
func refusedWithin(databaseURL string, limit time.Duration) bool {
	for deadline := time.Now().Add(limit); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		if connects(databaseURL) != nil {
			return true
		}
	}
	return false
}

// waitConnects polls databaseURL every 200 ms until it connects or limit
// has passed since since; it returns the last error (nil once connected).
func waitConnects(databaseURL string, since time.Time, limit time.Duration) error {
	err := connects(databaseURL)
	for err != nil && time.Since(since) < limit {
		time.Sleep(200 * time.Millisecond)
		err = connects(databaseURL)
	}
	return err
}

// grepLines returns the lines of s containing sub.
func grepLines(s, sub string) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, sub) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}
