package acceptance

import (
	"context"
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	osb "sigs.k8s.io/go-open-service-broker-client/v2"

	"github.com/pgbroker/pgbroker/naming"
)

// TestPlanChangesAcrossTiersKeepEveryCommit: a Starter instance written to
// without pause through the DATABASE_URL of its first binding moves to
// Business (Patroni adopts its node, a standby is added: two nodes and two
// gateways on distinct clients), to a larger Business and back to the
// smaller one (rolling, each exactly one switchover: the leader changes and
// the timeline goes up by one, whichever node led), then back to Starter. After each change every commit the
// writer saw acknowledged is there, the same DATABASE_URL still works, and
// the longest gap between commits is logged.
func TestPlanChangesAcrossTiersKeepEveryCommit(t *testing.T) {
	b := newBroker(t)
	c := b.client()
	id := uuid.NewString()
	short := naming.ShortID(id)
	provision(t, c, id, "postgresql-starter-512")
	defer deprovision(t, c, id, "postgresql-starter-1024")
	creds := bind(t, c, id, uuid.NewString(), "postgresql-starter-512", nil)
	databaseURL := creds["DATABASE_URL"].(string)
	createAcks(t, databaseURL)

	for _, step := range []struct {
		plan    string
		nodes   int
		rolling bool // Business to Business: exactly one switchover
	}{
		{"postgresql-business-512", 2, false},
		{"postgresql-business-1024", 2, true},
		{"postgresql-business-512", 2, true}, // the leader now sits on the other node
		{"postgresql-starter-1024", 1, false},
	} {
		w := startWriter(t, databaseURL)
		w.waitAcks(t, 20, time.Minute)
		w.resetGap()
		var leader string
		var timeline int
		if step.rolling {
			waitClusterHealthy(t, short, time.Minute)
			leader, timeline = leaderTimeline(t, short)
		}
		start := time.Now()
		changePlan(t, c, id, step.plan, 10*time.Minute)
		took := time.Since(start)
		before := w.acked()
		w.waitAcks(t, before+20, 2*time.Minute)
		acked, gap := w.stop()
		t.Logf("to %s in %s: %d commits acknowledged meanwhile, longest gap between commits %s", step.plan, took.Round(time.Millisecond), len(acked), gap)
		checkAcked(t, databaseURL, acked)
		nodes := runningAllocs(t, naming.NodesJobID(short))
		gateways := runningAllocs(t, naming.GatewaysJobID(short))
		if len(nodes) != step.nodes || len(gateways) != step.nodes {
			t.Fatalf("on %s: %d nodes and %d gateways running, want %d of each", step.plan, len(nodes), len(gateways), step.nodes)
		}
		if step.nodes == 2 && (nodes[0].NodeID == nodes[1].NodeID || gateways[0].NodeID == gateways[1].NodeID) {
			t.Errorf("on %s: nodes or gateways share a Nomad client", step.plan)
		}
		if step.rolling {
			// Each promotion starts a new timeline: one switchover is one more.
			after, tl := leaderTimeline(t, short)
			t.Logf("to %s: leader %s on timeline %d, was %s on %d", step.plan, after, tl, leader, timeline)
			if tl != timeline+1 || after == leader {
				t.Errorf("to %s: leader %s on timeline %d, was %s on %d: want one switchover (another leader, timeline %d)", step.plan, after, tl, leader, timeline, timeline+1)
			}
		}
		// Back on one node, the former standby's data is gone: a later
		// standby clones the leader afresh.
		if standby := filepath.Join(dataRoot, short, "node-1"); step.nodes == 1 && exists(standby) {
			t.Errorf("on %s: the former standby's data directory %s is left", step.plan, standby)
		}
	}
}

// leaderTimeline returns the name and PostgreSQL timeline of the running
// leader of the instance's cluster (Patroni GET /cluster).
func leaderTimeline(t testing.TB, short string) (string, int) {
	t.Helper()
	regs, _, err := nomadClient(t).Services().Get(naming.NodeService(short), nil)
	if err != nil {
		t.Fatal(err)
	}
	client := patroniClient(t, short, 2*time.Second)
	for _, r := range regs {
		for _, tag := range r.Tags {
			port, ok := strings.CutPrefix(tag, "patroni=")
			if !ok {
				continue
			}
			resp, err := client.Get("https://" + r.Address + ":" + port + "/cluster")
			if err != nil {
				continue
			}
			var cluster struct {
				Members []struct {
					Name, Role, State string
					Timeline          int
				} `json:"members"`
			}
			err = json.NewDecoder(resp.Body).Decode(&cluster)
			resp.Body.Close()
			if err != nil {
				continue
			}
			for _, m := range cluster.Members {
				if m.Role == "leader" && m.State == "running" {
					return m.Name, m.Timeline
				}
			}
		}
	}
	t.Fatalf("no running leader in the cluster of %s", short)
	return "", 0
}

// TestSandboxToBusinessKeepsEveryCommit: a Sandbox instance (no WAL
// archiving) moves to Business under a writer; every acknowledged commit is
// there, with two nodes and two gateways, and the standby streams.
func TestSandboxToBusinessKeepsEveryCommit(t *testing.T) {
	b := newBroker(t)
	c := b.client()
	id := uuid.NewString()
	short := naming.ShortID(id)
	provision(t, c, id, "postgresql-sandbox")
	defer deprovision(t, c, id, "postgresql-business-512")
	creds := bind(t, c, id, uuid.NewString(), "postgresql-sandbox", nil)
	databaseURL := creds["DATABASE_URL"].(string)
	createAcks(t, databaseURL)
	w := startWriter(t, databaseURL)
	w.waitAcks(t, 20, time.Minute)
	changePlan(t, c, id, "postgresql-business-512", 10*time.Minute)
	w.waitAcks(t, w.acked()+20, 2*time.Minute)
	acked, gap := w.stop()
	t.Logf("Sandbox to Business: %d commits acknowledged, longest gap %s", len(acked), gap)
	checkAcked(t, databaseURL, acked)
	if n, g := len(runningAllocs(t, naming.NodesJobID(short))), len(runningAllocs(t, naming.GatewaysJobID(short))); n != 2 || g != 2 {
		t.Fatalf("%d nodes and %d gateways running, want 2 and 2", n, g)
	}
	waitClusterHealthy(t, short, time.Minute)
}

// changePlan updates the instance to plan and waits for the operation.
func changePlan(t *testing.T, c osb.Client, id, plan string, limit time.Duration) {
	t.Helper()
	up, err := c.UpdateInstance(&osb.UpdateInstanceRequest{InstanceID: id, AcceptsIncomplete: true, ServiceID: serviceID, PlanID: &plan})
	if err != nil {
		t.Fatalf("update to %s: %v", plan, err)
	}
	if up.Async {
		waitOperation(t, c, id, up.OperationKey, limit)
	}
}

// TestBrokerKilledDuringPlanChangesAcrossTiersFinishes: the broker SIGKILLs
// itself once Patroni has adopted a Starter instance's node on its way to
// Business, again once a Business resize has replaced its first standby
// (synchronous replication still off), and again once the standby of a Business
// instance going back to Starter is removed; restarted each time, the
// operations finish, the rows are kept, the counts of nodes and gateways are
// the plan's, a Business cluster has its synchronous standby back, and no
// Patroni key is left once on Starter.
func TestBrokerKilledDuringPlanChangesAcrossTiersFinishes(t *testing.T) {
	t.Parallel()
	b := newBroker(t, "PGBROKER_ATTEMPT_TIMEOUT=45s", "PGBROKER_RESCUE_AFTER=50s", "PGBROKER_CRASH_AT=tiers:adopted")
	c := b.client()
	id := uuid.NewString()
	short := naming.ShortID(id)
	provision(t, c, id, "postgresql-starter-512")
	creds := bind(t, c, id, uuid.NewString(), "postgresql-starter-512", nil)
	conn := connect(t, creds["DATABASE_URL"].(string))
	mustExec(t, conn, "CREATE TABLE kept (n int); INSERT INTO kept VALUES (1), (2), (3)")
	conn.Close(context.Background())

	for _, step := range []struct {
		plan, crashAt, next string
		nodes               int
	}{
		{"postgresql-business-512", "tiers:adopted", "update:registered", 2},
		{"postgresql-business-1024", "update:registered", "tiers:standbys-removed", 2},
		{"postgresql-starter-512", "tiers:standbys-removed", "", 1},
	} {
		plan := step.plan
		up, err := c.UpdateInstance(&osb.UpdateInstanceRequest{InstanceID: id, AcceptsIncomplete: true, ServiceID: serviceID, PlanID: &plan})
		if err != nil {
			t.Fatalf("update to %s: %v", plan, err)
		}
		if !b.crashed(3 * time.Minute) {
			t.Fatalf("the broker did not crash at %s", step.crashAt)
		}
		b.restartWith("PGBROKER_CRASH_AT", step.next)
		waitOperation(t, c, id, up.OperationKey, 6*time.Minute)
		again := connect(t, creds["DATABASE_URL"].(string))
		if n := count(t, again, "kept"); n != 3 {
			t.Fatalf("on %s after a crash at %s: %d rows, want 3", plan, step.crashAt, n)
		}
		again.Close(context.Background())
		if n, g := len(runningAllocs(t, naming.NodesJobID(short))), len(runningAllocs(t, naming.GatewaysJobID(short))); n != step.nodes || g != step.nodes {
			t.Fatalf("on %s: %d nodes and %d gateways running, want %d of each", plan, n, g, step.nodes)
		}
		if step.nodes == 2 {
			// Synchronous replication is back on after the crash.
			waitClusterHealthy(t, short, time.Minute)
		}
	}
	assertNoPatroniKeys(t, short, "the move back to Starter")
	deprovision(t, c, id, "postgresql-starter-512")
	assertGone(t, id)
}
