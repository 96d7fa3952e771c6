package acceptance

import (
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/nomad/api"

	"github.com/pgbroker/pgbroker/naming"
)

// TestANodeThatCannotRunIsReportedAndComesBackWithItsData: a fresh
// Starter instance's node and gateway jobs are pinned by the provision to
// the clients they were placed on, without a restart. Its client is made
// ineligible and its node allocation stopped: Nomad cannot place the
// replacement anywhere else (no empty cluster on another client), and GET
// instance says "degraded: node-0 not running" within a few reconcile
// intervals, with nothing registered by the loop. Once the client is
// eligible again, Nomad places it there, the status is "running", and the
// row and the old DATABASE_URL are back. Then Nomad loses the instance's
// jobs and Variables: the repair puts the node back on the same client.
func TestANodeThatCannotRunIsReportedAndComesBackWithItsData(t *testing.T) {
	b := newBroker(t, "PGBROKER_RECONCILE_INTERVAL="+reconcileInterval.String())
	id, databaseURL, _ := starterWithARow(t, b, "before the outage")
	short := naming.ShortID(id)
	nodes := runningAllocs(t, naming.NodesJobID(short))
	gateways := runningAllocs(t, naming.GatewaysJobID(short))
	if len(nodes) != 1 || len(gateways) != 1 {
		t.Fatalf("allocations after the provision: nodes %+v, gateways %+v", nodes, gateways)
	}
	client := nodes[0].NodeID
	assertPinned(t, naming.NodesJobID(short), client)
	assertPinned(t, naming.GatewaysJobID(short), gateways[0].NodeID)
	assertNeverRestarted(t, naming.NodesJobID(short))
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
		t.Error("DATABASE_URL connects while the node cannot run: the outage was not simulated, or the node started elsewhere")
	}
	if elsewhere := runningAllocs(t, naming.NodesJobID(short)); len(elsewhere) != 0 {
		t.Errorf("node allocations while its client is ineligible: %+v; want none (its data is on %s)", elsewhere, client)
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
	if nodes := waitRunningAllocs(t, naming.NodesJobID(short), 1, 30*time.Second); nodes[0].NodeID != client {
		t.Errorf("node allocations after the outage: %+v; want one on %s", nodes, client)
	}
	if after := instanceJobVersions(t, short); after != versions {
		t.Errorf("job versions (nodes, gateways) went from %v to %v: the loop registered a job Nomad was to place", versions, after)
	}
	if n := strings.Count(b.logs.String(), `"msg":"repair started"`); n != 0 {
		t.Errorf("repairs started: %d; want none (Nomad places the node itself)", n)
	}

	lost := loseFromNomad(t, id)
	if err := waitConnects(databaseURL, time.Now(), reconcileInterval+3*time.Minute); err != nil {
		t.Fatalf("after the repair: %v", err)
	}
	waitStatus(t, b, id, func(s string) bool { return s == "running" }, time.Minute)
	// DATABASE_URL may connect a moment before Nomad's servers hear that the
	// new allocation runs.
	if nodes := waitRunningAllocs(t, naming.NodesJobID(short), 1, 30*time.Second); lost != client || nodes[0].NodeID != client {
		t.Fatalf("node allocations after the repair: %+v; want one on %s (lost from %s)", nodes, client, lost)
	}
	assertPinned(t, naming.NodesJobID(short), client)
	if body, err := keptRow(t, databaseURL); err != nil || body != "before the outage" {
		t.Errorf("row after the repair: %q, %v", body, err)
	}
	if n := logLines(b.logs.String(), `"msg":"repair started"`, " job "); n != 1 {
		t.Errorf("repairs of the jobs started: %d; want one", n)
	}
}

// TestAPinnedNodeWhoseDataIsGoneRefusesToStartEmpty: the data directory of
// a provisioned Starter disappears from its client (moved aside here) and
// its node restarts: the start script refuses to initdb an empty cluster
// in its place, so DATABASE_URL fails rather than reaching an empty
// database with the old password. Once the directory is back, the node
// starts on it with every row.
func TestAPinnedNodeWhoseDataIsGoneRefusesToStartEmpty(t *testing.T) {
	b := newBroker(t, "PGBROKER_RECONCILE_INTERVAL="+reconcileInterval.String())
	id, databaseURL, _ := starterWithARow(t, b, "kept aside")
	short := naming.ShortID(id)
	nodes := runningAllocs(t, naming.NodesJobID(short))
	if len(nodes) != 1 {
		t.Fatalf("node allocations: %+v", nodes)
	}
	// The provision marked the nodes Variable cluster_made; the task's env
	// template re-renders within its wait (max 1 s) of the mark, and a
	// restart before that would start without it. Nomad reports no
	// re-render of a noop template, so give it twice that.
	time.Sleep(2 * time.Second)
	dataDir := filepath.Join(dataRoot, short, naming.Member(0))
	aside := dataDir + ".aside"
	if err := os.Rename(dataDir, aside); err != nil {
		t.Fatal(err)
	}
	restored := false
	defer func() {
		if !restored {
			_ = os.Rename(aside, dataDir)
		}
	}()
	nc := nomadClient(t)
	if err := nc.Allocations().Restart(&api.Allocation{ID: nodes[0].ID}, "postgres", nil); err != nil {
		t.Fatal(err)
	}
	// Read every 3 s: each read of an allocation's file opens a connection
	// to the client agent, which limits them per address.
	const refusal = "refusing to initdb an empty one"
	var log string
	var err error
	for deadline := time.Now().Add(time.Minute); time.Now().Before(deadline) && !strings.Contains(log, refusal); time.Sleep(3 * time.Second) {
		log, err = allocFile(t, nodes[0].ID, "alloc/logs/postgres.stderr.0")
	}
	if !strings.Contains(log, refusal) {
		t.Fatalf("the start script's log does not say it refused to initdb (%v):\n%s\nevents: %s", err, tail(log, 20), taskEvents(nomadClient(t), naming.NodesJobID(short)))
	}
	if _, err := os.Stat(filepath.Join(dataDir, "PG_VERSION")); err == nil {
		t.Error("a cluster was made in place of the lost data directory")
	}
	if err := connects(databaseURL); err == nil {
		t.Error("DATABASE_URL connects while the node's data is gone")
	}

	if err := os.RemoveAll(dataDir); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(aside, dataDir); err != nil {
		t.Fatal(err)
	}
	restored = true
	if _, err := nc.Allocations().Stop(&api.Allocation{ID: nodes[0].ID}, nil); err != nil {
		t.Fatal(err)
	}
	if err := waitConnects(databaseURL, time.Now(), 2*time.Minute); err != nil {
		t.Fatalf("once the data directory is back: %v", err)
	}
	if body, err := keptRow(t, databaseURL); err != nil || body != "kept aside" {
		t.Errorf("row once the data directory is back: %q, %v", body, err)
	}
}

// assertPinned fails t unless job jobID carries a node_id constraint on
// client.
func assertPinned(t *testing.T, jobID, client string) {
	t.Helper()
	job, _, err := nomadClient(t).Jobs().Info(jobID, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range job.Constraints {
		if c.LTarget == "${node.unique.id}" && c.RTarget == client {
			return
		}
	}
	t.Errorf("job %s is not pinned to client %s: constraints %+v", jobID, client, job.Constraints)
}

// assertNeverRestarted fails t unless job jobID has had exactly one
// allocation, whose tasks never restarted: its pin was applied in place.
func assertNeverRestarted(t *testing.T, jobID string) {
	t.Helper()
	nc := nomadClient(t)
	allocs, _, err := nc.Jobs().Allocations(jobID, true, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(allocs) != 1 {
		t.Fatalf("allocations of %s: %d; want 1 (pinning it must not replace it)", jobID, len(allocs))
	}
	for task, s := range allocs[0].TaskStates {
		if s.Restarts != 0 {
			t.Errorf("task %s of %s restarted %d times; want none", task, jobID, s.Restarts)
		}
	}
}

// allocFile returns the file at path in allocation allocID's directory.
func allocFile(t *testing.T, allocID, path string) (string, error) {
	t.Helper()
	nc := nomadClient(t)
	alloc, _, err := nc.Allocations().Info(allocID, nil)
	if err != nil {
		return "", err
	}
	rc, err := nc.AllocFS().Cat(alloc, path, nil)
	if err != nil {
		return "", err
	}
	defer rc.Close()
	b, err := io.ReadAll(rc)
	return string(b), err
}
