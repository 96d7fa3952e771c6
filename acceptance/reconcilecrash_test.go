package acceptance

import (
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/nomad/api"

	"github.com/pgbroker/pgbroker/naming"
)

// TestBrokerKilledDuringARepairRepairsOnce: a Starter instance whose jobs
// and Variables Nomad lost is being repaired when the broker is killed
// (SIGKILL at a step of the provision the repair runs). The broker started
// again finishes the repair: the instance serves its rows through the
// DATABASE_URL handed out before, and its data directory was never
// served by two nodes: the node job was registered once (one version) and
// ran one allocation, on the client holding the data.
func TestBrokerKilledDuringARepairRepairsOnce(t *testing.T) {
	for _, point := range []string{"provision:nodes-registered", "provision:nodes-running"} {
		t.Run(point, func(t *testing.T) {
			b := newBroker(t, "PGBROKER_RECONCILE_INTERVAL="+reconcileInterval.String())
			id, databaseURL, _ := starterWithARow(t, b, "before the loss")

			client := crashMidRepairAndRestart(t, b, id, databaseURL, point, 2*time.Minute)
			short := naming.ShortID(id)
			nc := nomadClient(t)
			waitStatus(t, b, id, func(s string) bool { return s == "running" }, 30*time.Second)

			versions, _, _, err := nc.Jobs().Versions(naming.NodesJobID(short), false, nil)
			if err != nil {
				t.Fatal(err)
			}
			if len(versions) != 1 {
				t.Errorf("the node job has %d versions; want 1 (registered once)", len(versions))
			}
			allocs, _, err := nc.Jobs().Allocations(naming.NodesJobID(short), true, nil)
			if err != nil {
				t.Fatal(err)
			}
			var ran []string
			for _, a := range allocs {
				if a.CreateIndex >= *versions[0].CreateIndex && a.ClientStatus != api.AllocClientStatusPending {
					ran = append(ran, a.ID+" on "+a.NodeID+" "+a.ClientStatus)
				}
			}
			if len(ran) != 1 || !strings.Contains(ran[0], client+" running") {
				t.Errorf("node allocations since the repair: %q; want one running on client %s", ran, client)
			}
			if n := logLines(b.logs.String(), `"msg":"repaired"`, "jobs registered again"); n != 1 {
				t.Errorf("%d repairs registering the jobs finished; want 1", n)
			}
		})
	}
}

// TestBrokerKilledDuringABusinessRepairRepairsOnce: the same for a
// Business instance. The broker started again finishes the repair once:
// the node job was registered once (one version), each node ran one
// allocation, on the client holding its data and on its own data
// directory, and the cluster has one leader and one streaming standby.
func TestBrokerKilledDuringABusinessRepairRepairsOnce(t *testing.T) {
	for _, point := range []string{"provision:nodes-registered", "provision:nodes-running"} {
		t.Run(point, func(t *testing.T) {
			b := newBroker(t, "PGBROKER_RECONCILE_INTERVAL="+reconcileInterval.String())
			id, databaseURL, _ := businessWithARow(t, b, "before the loss")
			short := naming.ShortID(id)
			clients := groupClients(t, naming.NodesJobID(short))
			_, timeline := leaderTimeline(t, short)

			crashMidRepairAndRestart(t, b, id, databaseURL, point, 3*time.Minute)
			nc := nomadClient(t)
			waitStatus(t, b, id, func(s string) bool { return s == "running" }, 3*time.Minute)
			checkEachNodeOnItsOwnDataDirectory(t, short)
			checkOneLeaderOneStreamingStandby(t, short, timeline)

			versions, _, _, err := nc.Jobs().Versions(naming.NodesJobID(short), false, nil)
			if err != nil {
				t.Fatal(err)
			}
			if len(versions) != 1 {
				t.Errorf("the node job has %d versions; want 1 (registered once)", len(versions))
			}
			allocs, _, err := nc.Jobs().Allocations(naming.NodesJobID(short), true, nil)
			if err != nil {
				t.Fatal(err)
			}
			ran := map[string][]string{}
			for _, a := range allocs {
				if a.CreateIndex >= *versions[0].CreateIndex && a.ClientStatus != api.AllocClientStatusPending {
					ran[a.TaskGroup] = append(ran[a.TaskGroup], a.NodeID+" "+a.ClientStatus)
				}
			}
			for group, client := range clients {
				if got := ran[group]; len(got) != 1 || got[0] != client+" running" {
					t.Errorf("allocations of %s since the repair: %q; want one running on client %s", group, got, client)
				}
			}
			if n := logLines(b.logs.String(), `"msg":"repaired"`, "jobs registered again"); n != 1 {
				t.Errorf("%d repairs registering the jobs finished; want 1", n)
			}
		})
	}
}

// logLines counts the lines of logs that hold every one of parts. The
// repair tests count repairs of the jobs with it: a pass that read Nomad
// while loseFromNomad was still purging may have found the jobs there and
// restored the Variables alone, a repair of its own that names no job.
func logLines(logs string, parts ...string) int {
	n := 0
	for _, l := range strings.Split(logs, "\n") {
		all := true
		for _, p := range parts {
			all = all && strings.Contains(l, p)
		}
		if all {
			n++
		}
	}
	return n
}

// crashMidRepairAndRestart makes b crash at point during the repair of
// instance id after loseFromNomad (within the reconcile interval plus
// slack), checks the node job was registered by then, restarts b without
// the crash point, and waits (one more minute) until the DATABASE_URL
// handed out before connects and holds the row "before the loss". It
// returns the client the node ran on before the loss.
func crashMidRepairAndRestart(t *testing.T, b *broker, id, databaseURL, point string, slack time.Duration) string {
	t.Helper()
	b.restartWith("PGBROKER_CRASH_AT", point)
	client := loseFromNomad(t, id)
	if !b.crashed(reconcileInterval + slack) {
		t.Fatalf("the broker did not crash at %s during the repair", point)
	}
	if _, _, err := nomadClient(t).Jobs().Info(naming.NodesJobID(naming.ShortID(id)), nil); err != nil {
		t.Fatalf("the node job is not registered at the crash: %v", err)
	}
	b.restartWithout("PGBROKER_CRASH_AT")
	restarted := time.Now()
	limit := reconcileInterval + slack + time.Minute
	if err := waitConnects(databaseURL, restarted, limit); err != nil {
		t.Fatalf("the DATABASE_URL handed out before does not connect %s after the restart: %v", limit, err)
	}
	if body, err := keptRow(t, databaseURL); err != nil || body != "before the loss" {
		t.Errorf("row after the repair: %q, %v", body, err)
	}
	return client
}
