package acceptance

import (
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/nomad/api"

	"github.com/pgbroker/pgbroker/naming"
)

// TestANodeThatCannotRunIsReportedAndComesBackWithItsData: a Starter
// instance repaired once (its node job now pinned to the client holding
// its data) whose client is made ineligible and whose node allocation is
// stopped: Nomad cannot place the replacement, and GET instance says
// "degraded: node-0 not running" within a few reconcile intervals, with
// nothing registered by the loop. Once the client is eligible again, Nomad
// places it there, the status is "running", and the row and the old
// DATABASE_URL are back.
func TestANodeThatCannotRunIsReportedAndComesBackWithItsData(t *testing.T) {
	b := newBroker(t, "PGBROKER_RECONCILE_INTERVAL="+reconcileInterval.String())
	id, databaseURL, _ := starterWithARow(t, b, "before the outage")
	short := naming.ShortID(id)
	client := loseFromNomad(t, id)
	if err := waitConnects(databaseURL, time.Now(), reconcileInterval+3*time.Minute); err != nil {
		t.Fatalf("after the repair that pins the node job: %v", err)
	}
	waitStatus(t, b, id, func(s string) bool { return s == "running" }, time.Minute)
	nodes := runningAllocs(t, naming.NodesJobID(short))
	if len(nodes) != 1 || nodes[0].NodeID != client {
		t.Fatalf("node allocations after the repair: %+v; want one on %s", nodes, client)
	}
	versions := instanceJobVersions(t, short)

	nc := nomadClient(t)
	if _, err := nc.Nodes().ToggleEligibility(client, false, nil); err != nil {
		t.Fatal(err)
	}
	eligible := false
	defer func() {
		if !eligible {
			_, _ = nc.Nodes().ToggleEligibility(client, true, nil)
		}
	}()
	if _, err := nc.Allocations().Stop(&api.Allocation{ID: nodes[0].ID}, nil); err != nil {
		t.Fatal(err)
	}
	down := time.Now()
	got := waitStatus(t, b, id, func(s string) bool { return strings.HasPrefix(s, "degraded: ") }, 2*time.Minute)
	t.Logf("reported %s after the allocation stopped: %q", time.Since(down).Round(100*time.Millisecond), got)
	if got != "degraded: node-0 not running" {
		t.Errorf("status %q; want %q", got, "degraded: node-0 not running")
	}
	if err := connects(databaseURL); err == nil {
		t.Error("DATABASE_URL connects while the node cannot run: the outage was not simulated")
	}

	if _, err := nc.Nodes().ToggleEligibility(client, true, nil); err != nil {
		t.Fatal(err)
	}
	eligible = true
	waitStatus(t, b, id, func(s string) bool { return s == "running" }, 3*time.Minute)
	if err := waitConnects(databaseURL, time.Now(), time.Minute); err != nil {
		t.Fatalf("the DATABASE_URL handed out before, once the client is back: %v", err)
	}
	if body, err := keptRow(t, databaseURL); err != nil || body != "before the outage" {
		t.Errorf("row after the outage: %q, %v", body, err)
	}
	if nodes := runningAllocs(t, naming.NodesJobID(short)); len(nodes) != 1 || nodes[0].NodeID != client {
		t.Errorf("node allocations after the outage: %+v; want one on %s", nodes, client)
	}
	if after := instanceJobVersions(t, short); after != versions {
		t.Errorf("job versions (nodes, gateways) went from %v to %v: the loop registered a job Nomad was to place", versions, after)
	}
	if strings.Count(b.logs.String(), `"msg":"repair started"`) != 1 {
		t.Errorf("repairs started: %d; want only the first one", strings.Count(b.logs.String(), `"msg":"repair started"`))
	}
}
