package acceptance

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/nomad/api"

	"github.com/pgbroker/pgbroker/naming"
)

// instanceJobVersions returns the versions Nomad holds of the node job and the
// gateway job of instance short.
func instanceJobVersions(t testing.TB, short string) [2]uint64 {
	t.Helper()
	var out [2]uint64
	for i, id := range []string{naming.NodesJobID(short), naming.GatewaysJobID(short)} {
		job, _, err := nomadClient(t).Jobs().Info(id, nil)
		if err != nil {
			t.Fatalf("read job %s: %v", id, err)
		}
		out[i] = *job.Version
	}
	return out
}

// postgresTask is the postgres task of group node-0 of a node job.
func postgresTask(t testing.TB, job *api.Job) *api.Task {
	t.Helper()
	for _, tg := range job.TaskGroups {
		for _, task := range tg.Tasks {
			if *tg.Name == "node-0" && task.Name == "postgres" {
				return task
			}
		}
	}
	t.Fatalf("job %s has no task postgres in group node-0", *job.ID)
	return nil
}

// TestStarterWhoseNodeJobWasEditedByHandIsPutBack: a healthy Starter
// instance is never registered again by the reconcile loop (its job
// versions do not move across passes). Its node job edited by hand (the
// task's memory doubled and the job run again, as `nomad job inspect`,
// an edit and `nomad job run` do) is back to the broker's definition
// within a reconcile interval plus its start time, with its rows and the
// DATABASE_URL handed out before; the repair is logged and counted as
// drift, and the job then stays as it is.
func TestStarterWhoseNodeJobWasEditedByHandIsPutBack(t *testing.T) {
	b := newBroker(t, "PGBROKER_RECONCILE_INTERVAL="+reconcileInterval.String())
	const planMemoryMiB = 512 // postgresql-starter-512
	id, databaseURL, _ := starterWithARow(t, b, "before the edit")

	short := naming.ShortID(id)
	healthy := instanceJobVersions(t, short)
	time.Sleep(4 * reconcileInterval) // passes that must find nothing to do
	if now := instanceJobVersions(t, short); now != healthy {
		t.Fatalf("a healthy instance's jobs were registered again: versions %v, then %v", healthy, now)
	}
	if strings.Contains(b.logs.String(), "job definition drifted") {
		t.Fatalf("drift reported on a healthy instance: %s", grepLines(b.logs.String(), "drifted"))
	}

	client := runningAllocs(t, naming.NodesJobID(short))[0].NodeID
	nc := nomadClient(t)
	job, _, err := nc.Jobs().Info(naming.NodesJobID(short), nil)
	if err != nil {
		t.Fatal(err)
	}
	postgresTask(t, job).Resources.MemoryMB = new(2 * planMemoryMiB)
	if _, _, err := nc.Jobs().Register(job, nil); err != nil {
		t.Fatalf("register the edited node job: %v", err)
	}
	if got := nodeMemoryMiB(t, id); got != 2*planMemoryMiB {
		t.Fatalf("memory after the edit %d MiB; the edit was not registered", got)
	}

	edited := time.Now()
	limit := reconcileInterval + 2*time.Minute
	repaired := `"msg":"repaired","component":"reconcile","instance_id":"` + id + `","missing":"nodes job definition drifted"`
	for !strings.Contains(b.logs.String(), repaired) && time.Since(edited) < limit {
		time.Sleep(200 * time.Millisecond)
	}
	if !strings.Contains(b.logs.String(), repaired) {
		t.Fatalf("no drift repair logged %s after the edit: %s", limit, grepLines(b.logs.String(), "repair"))
	}
	t.Logf("repaired %s after the edit", time.Since(edited).Round(100*time.Millisecond))
	// The repair ends once the node of the new version answers through
	// the gateway.
	if got := nodeMemoryMiB(t, id); got != planMemoryMiB {
		t.Errorf("node job memory %d MiB after the repair; want the plan's %d", got, planMemoryMiB)
	}
	if err := connects(databaseURL); err != nil {
		t.Errorf("the DATABASE_URL handed out before does not connect after the repair: %v", err)
	}
	if body, err := keptRow(t, databaseURL); err != nil || body != "before the edit" {
		t.Errorf("row after the repair: %q, %v", body, err)
	}
	if nodes := waitRunningAllocs(t, naming.NodesJobID(short), 1, 30*time.Second); nodes[0].NodeID != client {
		t.Errorf("node allocations after the repair: %d, want 1 on client %s", len(nodes), client)
	}

	waitStatus(t, b, id, func(s string) bool { return s == "running" }, 30*time.Second)
	logs := b.logs.String()
	if !strings.Contains(logs, `"msg":"repair started","component":"reconcile","instance_id":"`+id+`","missing":"nodes job definition drifted"`) {
		t.Errorf("the log lacks the start of the drift repair: %s", grepLines(logs, "repair"))
	}
	if !strings.Contains(logs, "Resources/MemoryMB: 1024 → 512") {
		t.Errorf("the log does not say what drifted: %s", grepLines(logs, "drifted"))
	}
	_, metrics := b.raw(http.MethodGet, "/metrics", "", nil)
	if !strings.Contains(metrics, `pgbroker_reconcile_repairs_total{reason="drift",result="repaired"} 1`) {
		t.Errorf("/metrics lacks one drift repair: %s", grepLines(metrics, "pgbroker_reconcile"))
	}
	after := instanceJobVersions(t, short)
	time.Sleep(4 * reconcileInterval)
	if now := instanceJobVersions(t, short); now != after {
		t.Errorf("the repaired jobs were registered again: versions %v, then %v", after, now)
	}
	if n := strings.Count(b.logs.String(), `"msg":"repair started"`); n != 1 {
		t.Errorf("%d repairs started; want 1", n)
	}
}
