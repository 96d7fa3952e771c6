package acceptance

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/hashicorp/nomad/api"

	"github.com/pgbroker/pgbroker/naming"
)

// TestBusinessWhoseJobsAndVariablesNomadLostComesBackEachNodeOnItsOwnData:
// a Business instance whose node and gateway jobs are purged and whose
// Variables are deleted is back within the reconcile interval plus its
// start time: each node on the client that held its data and on its own
// data directory (the very files of before, not a new initdb), one Patroni
// leader and one streaming standby on one timeline, both gateways on their
// port, every row there, and the DATABASE_URL handed out before (same
// hosts, port, user and password) connects. The repair is reported in GET
// instance, the log and /metrics.
func TestBusinessWhoseJobsAndVariablesNomadLostComesBackEachNodeOnItsOwnData(t *testing.T) {
	b := newBroker(t, "PGBROKER_RECONCILE_INTERVAL="+reconcileInterval.String())
	id, databaseURL, took := businessWithARow(t, b, "before the loss")
	short := naming.ShortID(id)

	clients := groupClients(t, naming.NodesJobID(short))
	files := pgVersionFiles(t, short, 2)
	gateways := allocClients(runningAllocs(t, naming.GatewaysJobID(short)))
	_, timelineBefore := leaderTimeline(t, short)
	loseFromNomad(t, id)
	lost := time.Now()
	if !refusedWithin(databaseURL, 10*time.Second) {
		t.Fatal("DATABASE_URL connected throughout the 10 s after the purge: the loss was not simulated")
	}
	limit := reconcileInterval + 4*time.Minute
	if err := waitConnects(databaseURL, lost, limit); err != nil {
		t.Fatalf("the DATABASE_URL handed out before does not connect %s after the loss: %v", limit, err)
	}
	t.Logf("back %s after the loss (interval %s); a fresh provision took %s", time.Since(lost).Round(100*time.Millisecond), reconcileInterval, took.Round(100*time.Millisecond))

	if body, err := keptRow(t, databaseURL); err != nil || body != "before the loss" {
		t.Errorf("row after the repair: %q, %v", body, err)
	}
	waitClusterHealthy(t, short, 2*time.Minute)
	if after := groupClients(t, naming.NodesJobID(short)); !maps.Equal(after, clients) {
		t.Errorf("nodes on clients %v after the repair; before the loss %v", after, clients)
	}
	for group, before := range files {
		now, err := os.Stat(filepath.Join(dataRoot, short, group, "PG_VERSION"))
		if err != nil || !os.SameFile(before, now) {
			t.Errorf("%s's data directory is not the one of before the loss (a new initdb or clone): %v", group, err)
		}
	}
	checkEachNodeOnItsOwnDataDirectory(t, short)
	checkOneLeaderOneStreamingStandby(t, short, timelineBefore)
	if after := allocClients(runningAllocs(t, naming.GatewaysJobID(short))); !maps.Equal(after, gateways) {
		t.Errorf("gateways on clients %v after the repair; before %v", after, gateways)
	}

	waitStatus(t, b, id, func(s string) bool { return s == "running" }, 30*time.Second)
	logs := b.logs.String()
	if !strings.Contains(logs, `"msg":"repaired","component":"reconcile","instance_id":"`+id+`"`) {
		t.Errorf("the broker's log has no repaired event for the instance: %s", grepLines(logs, "repair"))
	}
	_, metrics := b.raw(http.MethodGet, "/metrics", "", nil)
	if !strings.Contains(metrics, `pgbroker_reconcile_repairs_total{reason="lost",result="repaired"} 1`) {
		t.Errorf("/metrics lacks one repair: %s", grepLines(metrics, "pgbroker_reconcile"))
	}
}

// businessWithARow provisions a Business instance (512) on b, binds it,
// writes one row (body) into its table kept, and waits until GET instance
// says "running". It returns the instance id, the binding's DATABASE_URL
// and how long the provision took.
func businessWithARow(t *testing.T, b *broker, body string) (string, string, time.Duration) {
	t.Helper()
	c := b.client()
	id := uuid.NewString()
	took := provisionWithin(t, c, id, businessPlan, 5*time.Minute)
	databaseURL := bind(t, c, id, uuid.NewString(), businessPlan, nil)["DATABASE_URL"].(string)
	app := connect(t, databaseURL)
	mustExec(t, app, "CREATE TABLE kept (body text)")
	mustExec(t, app, "INSERT INTO kept VALUES ('"+body+"')")
	app.Close(context.Background())
	waitStatus(t, b, id, func(s string) bool { return s == "running" }, 30*time.Second)
	return id, databaseURL, took
}

// groupClients maps each task group of the job's running allocations to
// its Nomad client; it fails unless each group runs once.
func groupClients(t testing.TB, jobID string) map[string]string {
	t.Helper()
	out := map[string]string{}
	for _, a := range runningAllocs(t, jobID) {
		if _, twice := out[a.TaskGroup]; twice {
			t.Fatalf("group %s of %s runs twice", a.TaskGroup, jobID)
		}
		out[a.TaskGroup] = a.NodeID
	}
	return out
}

// allocClients counts allocations by Nomad client.
func allocClients(allocs []*api.AllocationListStub) map[string]int {
	out := map[string]int{}
	for _, a := range allocs {
		out[a.NodeID]++
	}
	return out
}

// pgVersionFiles returns the PG_VERSION file of each of the n nodes'
// data directories (<data root>/<short>/node-<i>), by group: a data
// directory made again has a new one.
func pgVersionFiles(t testing.TB, short string, n int) map[string]os.FileInfo {
	t.Helper()
	out := map[string]os.FileInfo{}
	for i := range n {
		fi, err := os.Stat(filepath.Join(dataRoot, short, naming.Member(i), "PG_VERSION"))
		if err != nil {
			t.Fatal(err)
		}
		out[naming.Member(i)] = fi
	}
	return out
}

// checkEachNodeOnItsOwnDataDirectory fails unless the postmaster serving
// each running node allocation's address and port (postgres
// --listen_addresses=<address> --port=<port>, as Patroni starts it) runs on
// the data directory of the allocation's own group (-D <data
// root>/<short>/node-<i>), and no two allocations share one.
func checkEachNodeOnItsOwnDataDirectory(t testing.TB, short string) {
	t.Helper()
	procs, _ := filepath.Glob("/proc/[0-9]*")
	var postmasters []string
	for _, p := range procs {
		cmd, err := os.ReadFile(filepath.Join(p, "cmdline"))
		if err != nil {
			continue
		}
		args := strings.ReplaceAll(string(cmd), "\x00", " ")
		if strings.Contains(args, " -D "+filepath.Join(dataRoot, short)+"/") {
			postmasters = append(postmasters, args+" ")
		}
	}
	seen := map[string]string{}
	for _, a := range runningAllocs(t, naming.NodesJobID(short)) {
		alloc, _, err := nomadClient(t).Allocations().Info(a.ID, nil)
		if err != nil {
			t.Fatal(err)
		}
		var listen string
		for _, port := range alloc.AllocatedResources.Shared.Ports {
			if port.Label == "pg" {
				listen = "--listen_addresses=" + port.HostIP + " --port=" + strconv.Itoa(port.Value) + " "
			}
		}
		var dirs []string
		for _, args := range postmasters {
			if _, d, ok := strings.Cut(args, " -D "); ok && strings.Contains(args, listen) {
				dirs = append(dirs, strings.Fields(d)[0])
			}
		}
		want := filepath.Join(dataRoot, short, a.TaskGroup)
		if len(dirs) != 1 || dirs[0] != want {
			t.Errorf("allocation %s of %s (%s) is served by postmasters on %q; want one, on %s", a.ID[:8], a.TaskGroup, strings.TrimSpace(listen), dirs, want)
			continue
		}
		if other, ok := seen[dirs[0]]; ok {
			t.Errorf("allocations %s and %s both run on %s", other, a.ID[:8], dirs[0])
		}
		seen[dirs[0]] = a.ID[:8]
	}
	if len(seen) != 2 {
		t.Errorf("%d nodes found on their own data directories; want 2", len(seen))
	}
}

// checkOneLeaderOneStreamingStandby fails unless Patroni's GET /cluster
// shows one running leader and one streaming (or, as Patroni 3.0.2 says,
// running) standby, both on one
// timeline, that of the leader before (timelineBefore) or the next one (a
// standby that led after an equal race promoted once): never two leaders,
// never a fork.
func checkOneLeaderOneStreamingStandby(t testing.TB, short string, timelineBefore int) {
	t.Helper()
	var last string
	for deadline := time.Now().Add(time.Minute); time.Now().Before(deadline); time.Sleep(500 * time.Millisecond) {
		members, err := clusterMembers(t, short)
		if err != nil {
			last = err.Error()
			continue
		}
		last = fmt.Sprint(members)
		leaders, streaming, timelines := 0, 0, map[int]bool{}
		for _, m := range members {
			timelines[m.Timeline] = true
			switch {
			case m.Role == "leader" && m.State == "running":
				leaders++
			case m.Role != "leader" && (m.State == "streaming" || m.State == "running"):
				// Patroni before 3.0.4 says "running" of a standby that streams.
				streaming++
			}
		}
		if leaders == 1 && streaming == 1 && len(members) == 2 && len(timelines) == 1 {
			for tl := range timelines {
				if tl != timelineBefore && tl != timelineBefore+1 {
					t.Errorf("the cluster is on timeline %d; before the loss %d", tl, timelineBefore)
				}
			}
			t.Logf("Patroni members after the repair: %s (leader's timeline before: %d)", last, timelineBefore)
			return
		}
	}
	t.Errorf("Patroni's cluster is not one running leader and one streaming standby on one timeline: %s", last)
}

// patroniMember is one member of Patroni's GET /cluster.
type patroniMember struct {
	Name, Role, State, Host string
	Timeline                int
}

// clusterMembers reads Patroni's GET /cluster from the first node that
// answers.
func clusterMembers(t testing.TB, short string) ([]patroniMember, error) {
	t.Helper()
	regs, _, err := nomadClient(t).Services().Get(naming.NodeService(short), nil)
	if err != nil {
		return nil, err
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
				Members []patroniMember `json:"members"`
			}
			err = json.NewDecoder(resp.Body).Decode(&cluster)
			resp.Body.Close()
			if err == nil {
				return cluster.Members, nil
			}
		}
	}
	return nil, fmt.Errorf("no node of %s answered GET /cluster", short)
}

// TestBusinessNodeJobEditedByHandIsRolledBackOneNodeAtATime: a healthy
// Business instance is never registered again by the reconcile loop (its
// job versions do not move across passes). Its node job edited by hand
// (both nodes' memory doubled and the job run again, as `nomad job run`
// does) is back to the broker's definition within a reconcile interval
// plus its start time, rolled one node at a time: a writer committing
// through DATABASE_URL during the repair loses no acknowledged commit. The
// repair is logged and counted as drift once, and later passes find
// nothing to do.
func TestBusinessNodeJobEditedByHandIsRolledBackOneNodeAtATime(t *testing.T) {
	b := newBroker(t, "PGBROKER_RECONCILE_INTERVAL="+reconcileInterval.String())
	const planMemoryMiB = 512 // postgresql-business-512
	id, databaseURL, _ := businessWithARow(t, b, "before the edit")
	short := naming.ShortID(id)

	healthy := instanceJobVersions(t, short)
	time.Sleep(4 * reconcileInterval) // passes that must find nothing to do
	if now := instanceJobVersions(t, short); now != healthy {
		t.Fatalf("a healthy Business instance's jobs were registered again: versions %v, then %v", healthy, now)
	}
	if strings.Contains(b.logs.String(), "job definition drifted") {
		t.Fatalf("drift reported on a healthy Business instance: %s", grepLines(b.logs.String(), "drifted"))
	}
	clients := groupClients(t, naming.NodesJobID(short))

	createAcks(t, databaseURL)
	w := startWriter(t, databaseURL)
	nc := nomadClient(t)
	job, _, err := nc.Jobs().Info(naming.NodesJobID(short), nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, tg := range job.TaskGroups {
		tg.Tasks[0].Resources.MemoryMB = new(2 * planMemoryMiB)
	}
	if _, _, err := nc.Jobs().Register(job, nil); err != nil {
		t.Fatalf("register the edited node job: %v", err)
	}
	edited := time.Now()
	limit := reconcileInterval + 4*time.Minute
	repaired := `"msg":"repaired","component":"reconcile","instance_id":"` + id + `","missing":"nodes job definition drifted"`
	for !strings.Contains(b.logs.String(), repaired) && time.Since(edited) < limit {
		time.Sleep(200 * time.Millisecond)
	}
	if !strings.Contains(b.logs.String(), repaired) {
		w.stop()
		t.Fatalf("no drift repair logged %s after the edit: %s", limit, grepLines(b.logs.String(), "repair"))
	}
	t.Logf("repaired %s after the edit", time.Since(edited).Round(100*time.Millisecond))
	before := w.acked()
	w.waitAcks(t, before+20, time.Minute)
	acked, gap := w.stop()
	t.Logf("writer: %d commits acknowledged from the edit (%s) to after the repair, longest gap %s (the hand edit itself restarts both nodes at once); pauses over 250 ms: %v",
		len(acked), edited.Format("15:04:05.000"), gap, w.pauses)
	t.Logf("repair steps: %s", grepLines(b.logs.String(), `"msg":"repair`))
	checkAcked(t, databaseURL, acked)

	job, _, err = nc.Jobs().Info(naming.NodesJobID(short), nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, tg := range job.TaskGroups {
		if got := *tg.Tasks[0].Resources.MemoryMB; got != planMemoryMiB {
			t.Errorf("group %s memory %d MiB after the repair; want the plan's %d", *tg.Name, got, planMemoryMiB)
		}
	}
	if body, err := keptRow(t, databaseURL); err != nil || body != "before the edit" {
		t.Errorf("row after the repair: %q, %v", body, err)
	}
	waitClusterHealthy(t, short, 2*time.Minute)
	if after := groupClients(t, naming.NodesJobID(short)); !maps.Equal(after, clients) {
		t.Errorf("nodes on clients %v after the repair; before %v", after, clients)
	}
	logs := b.logs.String()
	if !strings.Contains(logs, "Resources/MemoryMB: 1024 → 512") {
		t.Errorf("the log does not say what drifted: %s", grepLines(logs, "drifted"))
	}
	if !strings.Contains(logs, "replacing standby") {
		t.Errorf("the log does not show the standby replaced first: %s", grepLines(logs, "repair progress"))
	}
	waitStatus(t, b, id, func(s string) bool { return s == "running" }, 30*time.Second)
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
