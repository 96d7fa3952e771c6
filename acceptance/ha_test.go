package acceptance

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/hashicorp/nomad/api"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/pgbroker/pgbroker/naming"
	"github.com/pgbroker/pgbroker/provisioner"
)

const businessPlan = "postgresql-business-512"

// TestBusinessClusterSurvivesTheLossOfItsLeaderAndOfAGateway: a Business
// instance runs two Patroni nodes and two gateways, each pair on distinct
// Nomad clients; its credentials list both gateways. While a writer commits
// through DATABASE_URL, the leader's Patroni and PostgreSQL are killed
// (SIGKILL, as a crashed host): the standby takes over, the writer goes on
// through the unchanged DATABASE_URL, and every commit it saw acknowledged
// is there afterwards. With the first gateway stopped, DATABASE_URL still
// connects. read_only_uri reads from a standby and refuses writes.
func TestBusinessClusterSurvivesTheLossOfItsLeaderAndOfAGateway(t *testing.T) {
	b := newBroker(t)
	c := b.client()
	id := uuid.NewString()
	provisionWithin(t, c, id, businessPlan, 5*time.Minute)
	short := naming.ShortID(id)
	deprovisioned := false
	defer func() {
		if !deprovisioned {
			deprovision(t, c, id, businessPlan)
		}
	}()
	if n := etcdKeys(t, short); n == 0 {
		t.Errorf("no Patroni keys in etcd under /pgbroker/%s/", provisioner.PatroniScope(short))
	}
	checkClusterTraffic(t, short)
	// GET instance names the members and their roles.
	if m := instanceAttributes(t, b, id)["members"]; !strings.Contains(m, "leader") || !strings.Contains(m, "sync_standby") {
		t.Errorf("GET instance metadata.attributes.members = %q, want the leader and the sync_standby", m)
	}

	nodes := runningAllocs(t, naming.NodesJobID(short))
	gateways := runningAllocs(t, naming.GatewaysJobID(short))
	if len(nodes) != 2 || len(gateways) != 2 {
		t.Fatalf("%d node and %d gateway allocations running, want 2 and 2", len(nodes), len(gateways))
	}
	for _, pair := range [][]*api.AllocationListStub{nodes, gateways} {
		if pair[0].NodeID == pair[1].NodeID {
			t.Errorf("allocations %s and %s of %s share Nomad client %s", pair[0].ID, pair[1].ID, pair[0].JobID, pair[0].NodeID)
		}
	}

	creds := bind(t, c, id, uuid.NewString(), businessPlan, nil)
	databaseURL := creds["DATABASE_URL"].(string)
	hosts, _ := creds["hosts"].([]any)
	if len(hosts) != 2 || !strings.Contains(databaseURL, ",") || !strings.Contains(databaseURL, "target_session_attrs=read-write") {
		t.Fatalf("Business credentials do not list both gateways: hosts %v, DATABASE_URL host part %q", hosts, hostPart(databaseURL))
	}
	createAcks(t, databaseURL)
	app := connect(t, databaseURL)

	// A crashed leader process: Nomad restarts the task at once, and either
	// it takes its lock back or the standby takes over after the ttl.
	// Either way writes resume and no acknowledged commit is lost.
	w := startWriter(t, databaseURL)
	w.waitAcks(t, 50, time.Minute)
	leader := leaderAlloc(t, app, nodes)
	before := w.acked()
	t.Logf("SIGKILL to the leader %s (Patroni and PostgreSQL) after %d acknowledged commits", leader.ID[:8], before)
	killNode(t, leader)
	w.waitAcks(t, before+50, 2*time.Minute)
	acked, gap := w.stop()
	t.Logf("writer: %d commits acknowledged, longest gap between commits %s", len(acked), gap)
	checkAcked(t, databaseURL, acked)

	// The leader's allocation stopped (a drained or lost client): the
	// standby takes over.
	app.Close(context.Background())
	app = connect(t, databaseURL)
	leader = leaderAlloc(t, app, runningAllocs(t, naming.NodesJobID(short)))
	app.Close(context.Background())
	w = startWriter(t, databaseURL)
	w.waitAcks(t, 50, time.Minute)
	before = w.acked()
	t.Logf("stopping the leader's allocation %s after %d acknowledged commits", leader.ID[:8], before)
	if _, err := nomadClient(t).Allocations().Stop(&api.Allocation{ID: leader.ID}, nil); err != nil {
		t.Fatal(err)
	}
	waitAllocStopped(t, leader.ID)
	stopped := w.acked()
	w.waitAcks(t, stopped+50, 2*time.Minute)
	acked, gap = w.stop()
	t.Logf("writer: %d commits acknowledged, longest gap between commits %s", len(acked), gap)
	checkAcked(t, databaseURL, acked)
	app = connect(t, databaseURL)
	if newLeader := leaderAlloc(t, app, runningAllocs(t, naming.NodesJobID(short))); newLeader.ID == leader.ID {
		t.Errorf("allocation %s still leads after it was stopped", leader.ID[:8])
	}

	// The read-only listener reaches a standby once the old leader rejoined.
	readOnlyURI, _ := creds["read_only_uri"].(string)
	if readOnlyURI == "" {
		t.Fatal("Business credentials have no read_only_uri")
	}
	var rows int
	deadline := time.Now().Add(2 * time.Minute)
	for {
		ro, err := tryConnect(readOnlyURI)
		if err == nil {
			err = ro.QueryRow(context.Background(), "SELECT count(*) FROM acks").Scan(&rows)
			if err == nil && rows < len(acked) {
				err = fmt.Errorf("the standby has %d of the %d acknowledged rows yet", rows, len(acked))
			}
			if err == nil {
				_, werr := ro.Exec(context.Background(), "INSERT INTO acks (id) VALUES (-1)")
				var pgErr *pgconn.PgError
				if !errors.As(werr, &pgErr) || pgErr.Code != "25006" {
					t.Errorf("a write through read_only_uri: %v, want SQLSTATE 25006 (read-only transaction)", werr)
				}
			}
			ro.Close(context.Background())
		}
		if err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("read_only_uri did not serve a read within 2 minutes: %v", err)
		}
		time.Sleep(500 * time.Millisecond)
	}

	// A dump reads a standby (through the read-only listener), and its
	// batch job runs on the standby's client.
	app = connect(t, databaseURL)
	nodes = runningAllocs(t, naming.NodesJobID(short))
	leading := leaderAlloc(t, app, nodes)
	app.Close(context.Background())
	clients := watchBatchClients(t, short, "dump")
	dump := manualDump(t, b, id)
	t.Logf("dump of the Business instance from a standby: %d bytes", dump.SizeBytes)
	if ran := clients(); len(ran) != 1 || ran[0] == leading.NodeID {
		t.Errorf("the dump job ran on clients %v, want one, not the leader's (%s)", ran, leading.NodeID)
	}
	removeDumps(t, id)

	// One gateway gone: DATABASE_URL still connects (through the other).
	first := gatewayOn(t, runningAllocs(t, naming.GatewaysJobID(short)), hosts[0].(string))
	if _, err := nomadClient(t).Allocations().Stop(first, nil); err != nil {
		t.Fatal(err)
	}
	waitAllocStopped(t, first.ID)
	probe, err := net.DialTimeout("tcp", net.JoinHostPort(hosts[0].(string), strconv.Itoa(int(creds["port"].(float64)))), time.Second)
	if err == nil {
		probe.Close()
		t.Logf("gateway %s already answers again (replaced on the same client)", hosts[0])
	} else {
		t.Logf("gateway %s is down: %v", hosts[0], err)
	}
	app2 := connect(t, databaseURL)
	mustExec(t, app2, "INSERT INTO acks (id) VALUES (-2)")
	app2.Close(context.Background())

	deprovision(t, c, id, businessPlan)
	deprovisioned = true
	assertNoPatroniKeys(t, short, "deprovisioning")
}

// assertNoPatroniKeys fails when keys of the instance's Patroni scope stay in
// etcd: a member key on a lease written by a Patroni that was still exiting
// expires with its lease (ttl 7 s), so it waits 15 s; keys without a lease
// would stay.
func assertNoPatroniKeys(t *testing.T, short, after string) {
	t.Helper()
	for deadline := time.Now().Add(15 * time.Second); etcdKeys(t, short) != 0; time.Sleep(500 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Errorf("Patroni keys left in etcd 15 s after %s: %v", after, etcdKeyNames(t, short))
			return
		}
	}
}

// etcdKeyNames lists the keys of the instance's Patroni scope in etcd,
// with their lease ("0": none).
func etcdKeyNames(t *testing.T, short string) []string {
	t.Helper()
	var names []string
	for _, kv := range etcdScope(t, short).KVs {
		k, _ := base64.StdEncoding.DecodeString(kv.Key)
		names = append(names, fmt.Sprintf("%s (lease %s)", k, kv.Lease))
	}
	return names
}

// etcdKeys counts the keys of the instance's Patroni scope in etcd.
func etcdKeys(t *testing.T, short string) int {
	t.Helper()
	n, _ := strconv.Atoi(etcdScope(t, short).Count)
	return n
}

// etcdScope reads the keys of the instance's Patroni scope through etcd's
// v3 JSON gateway (POST /v3/kv/range, keys only).
func etcdScope(t *testing.T, short string) (out struct {
	Count string `json:"count"`
	KVs   []struct {
		Key   string `json:"key"`
		Lease string `json:"lease"`
	} `json:"kvs"`
}) {
	t.Helper()
	prefix := "/pgbroker/" + provisioner.PatroniScope(short) + "/"
	if err := etcdCall("range", prefix, map[string]any{"keys_only": true}, &out); err != nil {
		t.Fatal(err)
	}
	if out.Count == "" {
		out.Count = "0" // etcd's JSON gateway leaves zero values out
	}
	return out
}

// createAcks creates the table writers commit to: one row per commit.
func createAcks(tb testing.TB, databaseURL string) {
	tb.Helper()
	conn, err := tryConnect(databaseURL)
	if err != nil {
		tb.Fatal(err)
	}
	defer conn.Close(context.Background())
	if _, err := conn.Exec(context.Background(), "CREATE TABLE acks (id bigint PRIMARY KEY, at timestamptz NOT NULL DEFAULT clock_timestamp())"); err != nil {
		tb.Fatal(err)
	}
}

// checkAcked fails the test unless every id in acked is in table acks.
func checkAcked(t testing.TB, databaseURL string, acked []int64) {
	t.Helper()
	conn := connect(t, databaseURL)
	defer conn.Close(context.Background())
	var missing int
	if err := conn.QueryRow(context.Background(),
		"SELECT count(*) FROM unnest($1::bigint[]) AS a(id) WHERE NOT EXISTS (SELECT 1 FROM acks WHERE acks.id = a.id)",
		acked).Scan(&missing); err != nil {
		t.Fatal(err)
	}
	if missing > 0 {
		t.Fatalf("%d of %d acknowledged commits are missing", missing, len(acked))
	}
}

// runningAllocs lists the running allocations of a job.
func runningAllocs(t testing.TB, jobID string) []*api.AllocationListStub {
	t.Helper()
	allocs, _, err := nomadClient(t).Jobs().Allocations(jobID, false, nil)
	if err != nil {
		t.Fatal(err)
	}
	var out []*api.AllocationListStub
	for _, a := range allocs {
		if a.ClientStatus == api.AllocClientStatusRunning && a.DesiredStatus == api.AllocDesiredStatusRun {
			out = append(out, a)
		}
	}
	return out
}

// waitRunningAllocs waits up to limit until job jobID has n running
// allocations, and returns them. A connection through a gateway can succeed
// a moment before Nomad's servers hear from the client that the allocation
// runs.
func waitRunningAllocs(t testing.TB, jobID string, n int, limit time.Duration) []*api.AllocationListStub {
	t.Helper()
	var got []*api.AllocationListStub
	for deadline := time.Now().Add(limit); time.Now().Before(deadline); time.Sleep(200 * time.Millisecond) {
		if got = runningAllocs(t, jobID); len(got) == n {
			return got
		}
	}
	t.Fatalf("job %s has %d running allocations after %s, want %d: %+v", jobID, len(got), limit, n, got)
	return nil
}

// leaderAlloc is the node allocation serving the connection (through a
// gateway: the leader), found by its registered address and port.
func leaderAlloc(t testing.TB, conn *pgx.Conn, nodes []*api.AllocationListStub) *api.AllocationListStub {
	t.Helper()
	var addr string
	var port int
	if err := conn.QueryRow(context.Background(), "SELECT host(inet_server_addr()), inet_server_port()").Scan(&addr, &port); err != nil {
		t.Fatal(err)
	}
	for _, a := range nodes {
		alloc, _, err := nomadClient(t).Allocations().Info(a.ID, nil)
		if err != nil {
			t.Fatal(err)
		}
		for _, n := range alloc.AllocatedResources.Shared.Ports {
			if n.Label == "pg" && n.HostIP == addr && n.Value == port {
				return a
			}
		}
	}
	t.Fatalf("no node allocation serves %s:%d", addr, port)
	return nil
}

// killNode SIGKILLs the allocation's Patroni and its PostgreSQL (postmaster
// and backends): what a crashed host leaves behind, without a clean release
// of the leader lock. Nomad restarts the task; Patroni rejoins as a standby.
func killNode(t *testing.T, a *api.AllocationListStub) {
	t.Helper()
	dataDir := filepath.Join(dataRoot, strings.TrimPrefix(strings.TrimSuffix(a.JobID, "-nodes"), "pg-"),
		a.TaskGroup)
	var pids []int
	procs, _ := filepath.Glob("/proc/[0-9]*")
	for _, p := range procs {
		cmd, err := os.ReadFile(filepath.Join(p, "cmdline"))
		if err != nil {
			continue
		}
		args := strings.ReplaceAll(string(cmd), "\x00", " ")
		if (strings.Contains(args, "patroni") && strings.Contains(args, a.ID)) || strings.Contains(args, "-D "+dataDir+" ") {
			pid, _ := strconv.Atoi(filepath.Base(p))
			pids = append(pids, pid)
		}
	}
	if len(pids) < 2 {
		t.Fatalf("found %d processes of Patroni and PostgreSQL in allocation %s (data %s), want 2 or more", len(pids), a.ID, dataDir)
	}
	for _, pid := range pids {
		if err := syscall.Kill(pid, syscall.SIGKILL); err != nil && !errors.Is(err, syscall.ESRCH) {
			t.Fatalf("kill %d: %v", pid, err)
		}
	}
}

// gatewayOn is the gateway allocation whose port is on host.
func gatewayOn(t *testing.T, gateways []*api.AllocationListStub, host string) *api.Allocation {
	t.Helper()
	for _, g := range gateways {
		alloc, _, err := nomadClient(t).Allocations().Info(g.ID, nil)
		if err != nil {
			t.Fatal(err)
		}
		for _, p := range alloc.AllocatedResources.Shared.Ports {
			if p.Label == "pg" && p.HostIP == host {
				return alloc
			}
		}
	}
	t.Fatalf("no gateway allocation on %s", host)
	return nil
}

func waitAllocStopped(t *testing.T, allocID string) {
	t.Helper()
	for deadline := time.Now().Add(time.Minute); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		a, _, err := nomadClient(t).Allocations().Info(allocID, nil)
		if err != nil {
			t.Fatal(err)
		}
		if a.ClientStatus != api.AllocClientStatusRunning && a.ClientStatus != api.AllocClientStatusPending {
			return
		}
	}
	t.Fatalf("allocation %s did not stop within a minute", allocID)
}

// writer commits one row at a time through a DATABASE_URL, reconnecting
// after an error, and records every commit the server acknowledged.
type writer struct {
	mu      sync.Mutex
	ids     []int64
	lastAck time.Time
	maxGap  time.Duration
	pauses  []string // "15:04:05.000+1.234s": each gap over 250 ms, to read beside the logs
	cancel  context.CancelFunc
	done    chan struct{}
}

func startWriter(t testing.TB, databaseURL string) *writer {
	ctx, cancel := context.WithCancel(context.Background())
	w := &writer{cancel: cancel, done: make(chan struct{}), lastAck: time.Now()}
	go func() {
		defer close(w.done)
		var conn *pgx.Conn
		// Ids unique across the writers of a test: microseconds since the epoch.
		for n := time.Now().UnixMicro(); ctx.Err() == nil; {
			if conn == nil {
				c, err := tryConnect(databaseURL)
				if err != nil {
					time.Sleep(50 * time.Millisecond)
					continue
				}
				conn = c
			}
			attempt, cancelAttempt := context.WithTimeout(ctx, 5*time.Second)
			_, err := conn.Exec(attempt, "INSERT INTO acks (id) VALUES ($1)", n)
			cancelAttempt()
			if err != nil {
				var pgErr *pgconn.PgError
				if errors.As(err, &pgErr) && pgErr.Code == "23505" {
					n++ // committed before the ack was lost: not counted, never retried
					continue
				}
				conn.Close(context.Background())
				conn = nil
				continue
			}
			now := time.Now()
			w.mu.Lock()
			w.ids = append(w.ids, n)
			gap := now.Sub(w.lastAck)
			if gap > w.maxGap {
				w.maxGap = gap
			}
			if gap > 250*time.Millisecond {
				w.pauses = append(w.pauses, fmt.Sprintf("%s+%.3fs", w.lastAck.Format("15:04:05.000"), gap.Seconds()))
			}
			w.lastAck = now
			w.mu.Unlock()
			n++
		}
		if conn != nil {
			conn.Close(context.Background())
		}
	}()
	return w
}

// resetGap starts measuring the longest gap afresh from now.
func (w *writer) resetGap() {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.maxGap, w.lastAck = 0, time.Now()
}

func (w *writer) acked() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return len(w.ids)
}

func (w *writer) waitAcks(t testing.TB, n int, limit time.Duration) {
	t.Helper()
	for deadline := time.Now().Add(limit); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		if w.acked() >= n {
			return
		}
	}
	t.Fatalf("the writer has %d acknowledged commits after %s, want %d", w.acked(), limit, n)
}

// stop ends the writer and returns the acknowledged ids and the longest gap
// between two acknowledged commits.
func (w *writer) stop() ([]int64, time.Duration) {
	w.cancel()
	<-w.done
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.ids, w.maxGap
}

func hostPart(databaseURL string) string {
	at := strings.LastIndex(databaseURL, "@")
	slash := strings.Index(databaseURL[at+1:], "/")
	if at < 0 || slash < 0 {
		return ""
	}
	return databaseURL[at+1 : at+1+slash]
}

// watchBatchClients polls Nomad for the allocations of the instance's batch
// jobs of kind ("dump", "basebackup"; purged once done) until the returned
// function is called, which returns the clients they were placed on.
func watchBatchClients(t *testing.T, short, kind string) func() []string {
	stop, done := make(chan struct{}), make(chan struct{})
	seen := map[string]bool{}
	go func() {
		defer close(done)
		for {
			jobs, _, _ := nomadClient(t).Jobs().PrefixList("pg-" + short + "-" + kind + "-")
			for _, j := range jobs {
				allocs, _, _ := nomadClient(t).Jobs().Allocations(j.ID, true, nil)
				for _, a := range allocs {
					seen[a.NodeID] = true
				}
			}
			select {
			case <-stop:
				return
			case <-time.After(50 * time.Millisecond):
			}
		}
	}()
	return func() []string {
		close(stop)
		<-done
		var out []string
		for id := range seen {
			out = append(out, id)
		}
		return out
	}
}
