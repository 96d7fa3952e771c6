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
	if err := connects(databaseURL); err == nil {
		t.Fatal("DATABASE_URL still connects after the purge: the loss was not simulated")
	}
	limit := reconcileInterval + 4*time.Minute
	var err error
	for time.Since(lost) < limit {
		if err = connects(databaseURL); err == nil {
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	if err != nil {
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

// checkEachNodeOnItsOwnDataDirectory fails unless the PostgreSQL started by
// the Patroni of each running node allocation (its cmdline names the
// allocation) serves the data directory of the allocation's own group
// (postgres -D <data root>/<short>/node-<i>).
func checkEachNodeOnItsOwnDataDirectory(t testing.TB, short string) {
	t.Helper()
	procs, _ := filepath.Glob("/proc/[0-9]*")
	cmdline := map[int]string{}
	parent := map[int]int{}
	for _, p := range procs {
		pid, _ := strconv.Atoi(filepath.Base(p))
		cmd, err := os.ReadFile(filepath.Join(p, "cmdline"))
		if err != nil {
			continue
		}
		cmdline[pid] = strings.ReplaceAll(string(cmd), "\x00", " ")
		if stat, err := os.ReadFile(filepath.Join(p, "stat")); err == nil {
			// pid (comm) state ppid ...: comm may hold spaces, so read after the last ')'.
			fields := strings.Fields(string(stat[strings.LastIndexByte(string(stat), ')')+1:]))
			if len(fields) > 1 {
				parent[pid], _ = strconv.Atoi(fields[1])
			}
		}
	}
	seen := map[string]string{}
	for _, a := range runningAllocs(t, naming.NodesJobID(short)) {
		var dirs []string
		for pid, args := range cmdline {
			_, d, ok := strings.Cut(args, " -D ")
			if !ok || !strings.Contains(cmdline[parent[pid]], a.ID) || !strings.Contains(cmdline[parent[pid]], "patroni") {
				continue
			}
			dirs = append(dirs, strings.Fields(d)[0])
		}
		want := filepath.Join(dataRoot, short, a.TaskGroup)
		if len(dirs) != 1 || dirs[0] != want {
			t.Errorf("allocation %s of %s runs PostgreSQL on %q; want one, on %s", a.ID[:8], a.TaskGroup, dirs, want)
			continue
		}
		if other, ok := seen[dirs[0]]; ok {
			t.Errorf("allocations %s and %s both run on %s", other, a.ID[:8], dirs[0])
		}
		seen[dirs[0]] = a.ID[:8]
	}
	if len(seen) != 2 {
		t.Errorf("%d nodes found on their data directories; want 2", len(seen))
	}
}

// checkOneLeaderOneStreamingStandby fails unless Patroni's GET /cluster
// shows one running leader and one streaming standby, both on one
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
			case m.Role != "leader" && m.State == "streaming":
				streaming++
			}
		}
		if leaders == 1 && streaming == 1 && len(members) == 2 && len(timelines) == 1 {
			for tl := range timelines {
				if tl != timelineBefore && tl != timelineBefore+1 {
					t.Errorf("the cluster is on timeline %d; before the loss %d", tl, timelineBefore)
				}
			}
			t.Logf("Patroni members after the repair: %s", last)
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
