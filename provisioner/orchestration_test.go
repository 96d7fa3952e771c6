package provisioner

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/pgbroker/pgbroker/naming"
)

// Unit tests of the orchestration against the fakes of fake_test.go: the
// order of the steps of plan changes, tier changes and point-in-time
// restores, and their resumption after a crash at each crash point.

const testShort = "0123456789ab"

func testInstance() Instance {
	return Instance{ShortID: testShort, GatewayPort: 31000, ReadOnlyPort: 31001}
}

func starterSize(memoryMiB int) Size {
	return Size{MemoryMiB: memoryMiB, CPUMHz: 500, Nodes: 1, Gateways: 1, MaxConnections: memoryMiB / 5, PITRDays: 7}
}

func businessSize(memoryMiB int) Size {
	s := starterSize(memoryMiB)
	s.Nodes, s.Gateways = 2, 2
	return s
}

var restoreTarget = time.Date(2026, 11, 20, 0, 0, 0, 0, time.UTC)

func nop(string) {}

// provisioned returns a world holding the instance provisioned on size,
// Patroni's leader set to leader on Business, the log emptied.
func provisioned(t *testing.T, size Size, leader string) (*world, Instance) {
	t.Helper()
	w := newWorld()
	in := testInstance()
	placed, err := w.provisioner(t).Provision(context.Background(), in, size, nop)
	if err != nil {
		t.Fatalf("provision: %v", err)
	}
	in.NodeID = placed.NodeID
	noViolations(t, w)
	if size.HA() {
		w.leader[testShort] = leader
	}
	w.resetLog()
	return w, in
}

func noViolations(t *testing.T, w *world) {
	t.Helper()
	for _, l := range w.significant() {
		if strings.HasPrefix(l, "VIOLATION") {
			t.Errorf("%s", l)
		}
	}
}

func sameSteps(t *testing.T, got, want []string) {
	t.Helper()
	if !slices.Equal(got, want) {
		t.Errorf("steps:\n  %s\nwant:\n  %s", strings.Join(got, "\n  "), strings.Join(want, "\n  "))
	}
}

// steps are the kinds of log lines the step-order tests compare: the job
// versions registered, what restarts, stops or starts a node or gateway,
// Patroni's state changes and the SQL and pgBackRest commands.
var steps = []string{"register", "restart", "place", "stop", "sync", "switchover", "parameters", "sql", "pgbackrest", "restore", "etcd-delete", "cleanup"}

// registered is the log line of a new version of the instance's job kind
// ("nodes", "gateways", "cleanup").
func registered(kind string, version int) string {
	return fmt.Sprintf("register pg-%s-%s v%d", testShort, kind, version)
}

// planChange is a plan change from a Business instance led by leader (or a
// Starter one) and the steps it must take.
type planChange struct {
	name     string
	leader   string
	from, to Size
	want     []string
}

// run changes the plan and compares the steps; it returns the world and
// the placement ChangePlan returned.
func (c planChange) run(t *testing.T) (*world, Placement) {
	t.Helper()
	w, in := provisioned(t, c.from, c.leader)
	placed, err := w.provisioner(t).ChangePlan(context.Background(), in, c.from, c.to, nop)
	if err != nil {
		t.Fatal(err)
	}
	sameSteps(t, w.significant(steps...), c.want)
	return w, placed
}

func TestRollingPlanChangeReplacesTheStandbyFirstAndTheLeaderLastWithOneSwitchover(t *testing.T) {
	for _, c := range []planChange{
		{"LeaderNode0", "node-0", businessSize(512), businessSize(1024), []string{
			"parameters map[max_connections:204]",
			"sync off", registered("nodes", 1), "restart node-1", "sync on",
			"sql CHECKPOINT", "switchover node-0 -> node-1",
			"sync off", registered("nodes", 2), "restart node-0", "sync on",
		}},
		{"LeaderNode1", "node-1", businessSize(512), businessSize(1024), []string{
			"parameters map[max_connections:204]",
			"sync off", registered("nodes", 1), "restart node-0", "sync on",
			"sql CHECKPOINT", "switchover node-1 -> node-0",
			"sync off", registered("nodes", 2), "restart node-1", "sync on",
		}},
		// Same size: no new job version, no switchover; synchronous mode on
		// in case a crash left it off.
		{"NothingToReplace", "node-0", businessSize(512), businessSize(512), []string{
			"parameters map[max_connections:102]", "sync on",
		}},
	} {
		t.Run(c.name, func(t *testing.T) {
			w, placed := c.run(t)
			if placed.NodeID != "" || !slices.Equal(placed.NodeClients, []string{"client-0", "client-1"}) {
				t.Errorf("placement %+v, want NodeID unchanged and each node's client", placed)
			}
			if st := w.state(); !strings.Contains(st, "sync=true") {
				t.Errorf("synchronous mode off at the end:\n%s", st)
			}
		})
	}
}

func TestTierChangeStepOrder(t *testing.T) {
	for _, c := range []planChange{
		// ToCluster: node-0 restarts under Patroni on its data, the one
		// gateway is replaced alone (sticky), then the second added, then
		// the standby clones the leader.
		{"StarterToBusiness", "", starterSize(512), businessSize(1024), []string{
			registered("nodes", 1), "restart node-0",
			registered("gateways", 1), "restart gateway[0]",
			registered("gateways", 2), "place gateway[1]",
			"sql replication-role",
			registered("nodes", 2), "place node-1",
			"sql replication-role",
			"pgbackrest stanza-create on node-0",
		}},
		// ToSingle: node-0 leads already; synchronous mode off before the
		// standby stops, the gateways route to the single node, node-0
		// restarts without Patroni, then the keys and the standby's data go.
		{"BusinessToStarter", "node-0", businessSize(1024), starterSize(512), []string{
			"sync off", registered("nodes", 1), "stop node-1",
			registered("gateways", 1), "restart gateway[0]", "stop gateway[1]",
			registered("nodes", 2), "restart node-0",
			"etcd-delete pg-" + testShort,
			registered("cleanup", 0), "cleanup client-1 [node-1]",
		}},
		{"BusinessToStarterLedByNode1", "node-1", businessSize(1024), starterSize(512), []string{
			"sql CHECKPOINT", "switchover node-1 -> node-0",
			"sync off", registered("nodes", 1), "stop node-1",
			registered("gateways", 1), "restart gateway[0]", "stop gateway[1]",
			registered("nodes", 2), "restart node-0",
			"etcd-delete pg-" + testShort,
			registered("cleanup", 0), "cleanup client-1 [node-1]",
		}},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, placed := c.run(t)
			if !c.to.HA() && (placed.NodeID != "client-0" || placed.NodeClients != nil) {
				t.Errorf("placement %+v, want node-0's client-0 and no node clients", placed)
			}
			if c.to.HA() && !slices.Equal(placed.NodeClients, []string{"client-0", "client-1"}) {
				t.Errorf("placement %+v, want each node's client", placed)
			}
		})
	}
}

func TestProvisionStepOrder(t *testing.T) {
	database := "sql create-database db_" + testShort
	for _, c := range []struct {
		name string
		size Size
		want []string
	}{
		{"Starter", starterSize(512), []string{
			registered("nodes", 0), "place node-0", registered("gateways", 0), "place gateway[0]",
			database, "pgbackrest stanza-create on node-0",
		}},
		// The standby streams synchronously before the database is made.
		{"Business", businessSize(512), []string{
			registered("nodes", 0), "place node-0", "place node-1",
			registered("gateways", 0), "place gateway[0]", "place gateway[1]",
			"sql replication-role", database, "pgbackrest stanza-create on node-0",
		}},
	} {
		t.Run(c.name, func(t *testing.T) {
			w := newWorld()
			placed, err := w.provisioner(t).Provision(context.Background(), testInstance(), c.size, nop)
			if err != nil {
				t.Fatal(err)
			}
			sameSteps(t, w.significant(steps...), c.want)
			if placed.NodeID != "client-0" {
				t.Errorf("placement %+v, want node-0's client-0", placed)
			}
			if want := []string{"client-0", "client-1"}; c.size.HA() && !slices.Equal(placed.NodeClients, want) {
				t.Errorf("placement %+v, want each node's client %q", placed, want)
			}
			// A single node and its gateway end pinned where they were
			// placed; a cluster's nodes follow distinct_hosts.
			wantNode, wantGateway := "client-0", w.allocs[naming.GatewaysJobID(testShort)][0].NodeID
			if c.size.HA() {
				wantNode, wantGateway = "", ""
			}
			if got := groupVar(w.jobs[naming.NodesJobID(testShort)].TaskGroups[0], "node_id"); got != wantNode {
				t.Errorf("node job pinned to %q; want %q", got, wantNode)
			}
			if got, _ := groupVar(w.jobs[naming.GatewaysJobID(testShort)].TaskGroups[0], "node_id").(string); got != wantGateway {
				t.Errorf("gateway job pinned to %q; want %q", got, wantGateway)
			}
			// From now on a single node's start script refuses to initdb.
			if got, want := w.vars[naming.NodesSecretPath(testShort)][naming.ItemClusterMade], map[bool]string{false: "true"}[c.size.HA()]; got != want {
				t.Errorf("nodes Variable %s = %q; want %q", naming.ItemClusterMade, got, want)
			}
		})
	}
}

func TestDeprovisionLeavesNothingBehind(t *testing.T) {
	w, in := provisioned(t, businessSize(512), "node-1")
	if err := w.provisioner(t).Deprovision(context.Background(), in, nop); err != nil {
		t.Fatal(err)
	}
	// The broker's CA is the deployment's, not the instance's.
	want := "variable pgbroker/test/ca [certificate private_key]\ndata directories []\nrestored map[]\n"
	if got := w.state(); got != want {
		t.Errorf("left behind:\n%s\nwant:\n%s", got, want)
	}
	sameSteps(t, w.significant("cleanup", "etcd-delete"), []string{"cleanup client-0 []", "cleanup client-1 []", "etcd-delete pg-" + testShort})
}

func TestPointInTimeRestoreStepOrder(t *testing.T) {
	restore := "restore r1 set=20261116-020000F target=2026-11-20 00:00:00.000000+00"
	for _, c := range []struct {
		name string
		size Size
		want []string
	}{
		{"Starter", starterSize(512), []string{
			"pgbackrest check+info on node-0",
			registered("nodes", 1), "restart node-0", restore,
		}},
		// A single node first (ToSingle, keeping two gateways), restored
		// like a Starter, then a cluster again (ToCluster).
		{"Business", businessSize(512), []string{
			"sync off", registered("nodes", 1), "stop node-1",
			registered("gateways", 1), "restart gateway[0]", "restart gateway[1]",
			registered("nodes", 2), "restart node-0",
			"etcd-delete pg-" + testShort,
			registered("cleanup", 0), "cleanup client-1 [node-1]",
			"pgbackrest check+info on node-0",
			registered("nodes", 3), "restart node-0", restore,
			registered("nodes", 4), "restart node-0",
			registered("gateways", 2), "restart gateway[0]", "restart gateway[1]",
			"sql replication-role",
			registered("nodes", 5), "place node-1",
			"sql replication-role",
			"pgbackrest stanza-create on node-0",
		}},
	} {
		t.Run(c.name, func(t *testing.T) {
			w, in := provisioned(t, c.size, "node-0")
			p := w.provisioner(t)
			if err := p.RestoreToTime(context.Background(), in, c.size, "r1", restoreTarget, nop); err != nil {
				t.Fatal(err)
			}
			sameSteps(t, w.significant(steps...), c.want)
			done, err := p.RestoreRegistered(context.Background(), in, "r1")
			if err != nil || !done {
				t.Errorf("RestoreRegistered = %v, %v after the restore", done, err)
			}
		})
	}
}

// scenario is an operation run on a world set up by setup.
type scenario struct {
	name  string
	setup func(t *testing.T) (*world, Instance)
	run   func(ctx context.Context, p *Provisioner, in Instance) error
}

func empty(*testing.T) (*world, Instance) { return newWorld(), testInstance() }

func on(size Size, leader string) func(*testing.T) (*world, Instance) {
	return func(t *testing.T) (*world, Instance) { return provisioned(t, size, leader) }
}

func provision(size Size) func(context.Context, *Provisioner, Instance) error {
	return func(ctx context.Context, p *Provisioner, in Instance) error {
		_, err := p.Provision(ctx, in, size, nop)
		return err
	}
}

func changePlan(from, to Size) func(context.Context, *Provisioner, Instance) error {
	return func(ctx context.Context, p *Provisioner, in Instance) error {
		_, err := p.ChangePlan(ctx, in, from, to, nop)
		return err
	}
}

func restoreToTime(size Size) func(context.Context, *Provisioner, Instance) error {
	return func(ctx context.Context, p *Provisioner, in Instance) error {
		return p.RestoreToTime(ctx, in, size, "r1", restoreTarget, nop)
	}
}

func bind(ctx context.Context, p *Provisioner, in Instance) error {
	_, err := p.Bind(ctx, in, "b1", false)
	return err
}

func unbind(ctx context.Context, p *Provisioner, in Instance) error {
	return p.Unbind(ctx, in, naming.BindingRole("b1"))
}

// bound is a Starter instance with binding b1.
func bound(t *testing.T) (*world, Instance) {
	w, in := provisioned(t, starterSize(512), "")
	if err := bind(context.Background(), w.provisioner(t), in); err != nil {
		t.Fatal(err)
	}
	w.resetLog()
	return w, in
}

func deprovision(ctx context.Context, p *Provisioner, in Instance) error {
	return p.Deprovision(ctx, in, nop)
}

var crashScenarios = []scenario{
	{"Bind", on(starterSize(512), ""), bind},
	{"Unbind", bound, unbind},
	{"ProvisionStarter", empty, provision(starterSize(512))},
	{"ProvisionBusiness", empty, provision(businessSize(512))},
	{"ResizeStarter", on(starterSize(512), ""), changePlan(starterSize(512), starterSize(1024))},
	{"RollBusiness", on(businessSize(512), "node-0"), changePlan(businessSize(512), businessSize(1024))},
	{"RollBusinessLedByNode1", on(businessSize(512), "node-1"), changePlan(businessSize(512), businessSize(1024))},
	{"StarterToBusiness", on(starterSize(512), ""), changePlan(starterSize(512), businessSize(1024))},
	{"BusinessToStarter", on(businessSize(1024), "node-1"), changePlan(businessSize(1024), starterSize(512))},
	{"RestoreStarter", on(starterSize(512), ""), restoreToTime(starterSize(512))},
	{"RestoreBusiness", on(businessSize(512), "node-0"), restoreToTime(businessSize(512))},
	{"DeprovisionBusiness", on(businessSize(512), "node-0"), deprovision},
}

// irreversible are the kinds of steps a resumed operation must not repeat:
// a restart or a placement of a node or gateway, a standby stopped, a
// switchover, a restore.
var irreversible = []string{"restart", "place", "stop", "switchover", "restore"}

// outcome is what an uninterrupted run of a scenario leaves: the end state,
// its irreversible steps (sorted), the crash points it passes and the
// number of calls it makes into the fakes.
type outcome struct {
	state  string
	steps  []string
	points []string
	calls  int
}

func uninterrupted(t *testing.T, s scenario) outcome {
	t.Helper()
	w, in := s.setup(t)
	w.calls = 0
	points, err := runUntil(-1, func() error { return s.run(context.Background(), w.provisioner(t), in) })
	if err != nil {
		t.Fatalf("uninterrupted run: %v", err)
	}
	noViolations(t, w)
	return outcome{state: w.state(), steps: sorted(w.significant(irreversible...)), points: points, calls: w.calls}
}

// resumes runs the scenario again from scratch with a new Provisioner (a
// restarted broker) on w, where a run was interrupted (as label says), and
// checks that it ends as the uninterrupted run did, having restarted,
// switched over and restored exactly what that run did.
func resumes(t *testing.T, s scenario, w *world, in Instance, label string, want outcome) {
	t.Helper()
	if err := s.run(context.Background(), w.provisioner(t), in); err != nil {
		t.Errorf("%s, run again: %v", label, err)
		return
	}
	noViolations(t, w)
	if st := w.state(); st != want.state {
		t.Errorf("%s, run again: end state\n%s\nwant (uninterrupted)\n%s", label, st, want.state)
	}
	if got := sorted(w.significant(irreversible...)); !slices.Equal(got, want.steps) {
		t.Errorf("%s, run again: irreversible steps\n  %s\nwant (uninterrupted)\n  %s", label,
			strings.Join(got, "\n  "), strings.Join(want.steps, "\n  "))
	}
}

// TestCrashedOperationFinishesWithoutRepeatingAStep stops each operation at
// each crash point it passes (as PGBROKER_CRASH_AT would), runs it again,
// and checks that it ends in the state an uninterrupted run leaves: no
// second switchover, no second restore, no extra job version.
func TestCrashedOperationFinishesWithoutRepeatingAStep(t *testing.T) {
	for _, s := range crashScenarios {
		t.Run(s.name, func(t *testing.T) {
			want := uninterrupted(t, s)
			if len(want.points) == 0 {
				t.Fatal("the operation passes no crash point")
			}
			for i, point := range want.points {
				w, in := s.setup(t)
				got, err := runUntil(i, func() error { return s.run(context.Background(), w.provisioner(t), in) })
				if err != nil || got[len(got)-1] != point {
					t.Fatalf("crash at %s (#%d): stopped at %v, error %v", point, i, got, err)
				}
				resumes(t, s, w, in, fmt.Sprintf("crash at %s (#%d)", point, i), want)
			}
		})
	}
}

// TestOperationCrashedBeforeAnyCallFinishesWithoutRepeatingAStep is the
// same with the broker killed before each call it makes to Nomad, Patroni,
// etcd or PostgreSQL in turn: between any two steps, not only at the named
// crash points.
func TestOperationCrashedBeforeAnyCallFinishesWithoutRepeatingAStep(t *testing.T) {
	for _, s := range crashScenarios {
		t.Run(s.name, func(t *testing.T) {
			want := uninterrupted(t, s)
			for k := 1; k <= want.calls; k++ {
				w, in := s.setup(t)
				w.calls, w.crashAt = 0, k
				if _, err := runUntil(-1, func() error { return s.run(context.Background(), w.provisioner(t), in) }); err != nil || w.calls < k {
					t.Fatalf("crash before call %d of %d: ran %d calls, error %v", k, want.calls, w.calls, err)
				}
				w.crashAt = 0
				resumes(t, s, w, in, fmt.Sprintf("crash before call %d of %d", k, want.calls), want)
			}
		})
	}
}

func sorted(lines []string) []string { return slices.Sorted(slices.Values(lines)) }
