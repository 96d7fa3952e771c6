package reconcile

import (
	"context"
	"slices"
	"strings"
	"testing"

	"github.com/hashicorp/nomad/api"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/pgbroker/pgbroker/naming"
	"github.com/pgbroker/pgbroker/store"
)

func passes(t *testing.T, r *Reconciler, n int) {
	t.Helper()
	for range n {
		if err := r.Pass(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
}

func TestPassRegistersAgainAStarterWhoseNodeJobWasEditedByHand(t *testing.T) {
	for _, plan := range []string{starter, sandbox} {
		t.Run(plan, func(t *testing.T) {
			w := newWorld()
			inst := w.healthy("inst-1", plan)
			w.gatewayCert = certNaming(t, "10.0.0.2")
			w.drifted[naming.NodesJobID(inst.ShortID)] = "MemoryMB"
			// Back to the broker's definition, its gateway now pinned by the
			// repair: the next passes find nothing to do.
			repairedOnce(t, w, inst, "provision "+inst.ShortID+" node=client-a port=31007 gateway=client-b",
				"nodes job definition drifted", "drift")
		})
	}
}

// TestPassNeverRegistersAHealthyInstanceAgain: a job Nomad holds as the
// broker registered it is not drift, whether its gateway is placed by the
// scheduler or pinned by an earlier repair.
func TestPassNeverRegistersAHealthyInstanceAgain(t *testing.T) {
	for _, c := range []struct {
		name     string
		nodePin  string // the registered node job's pin
		pin      string // the registered gateway job's pin
		certIP   string // the address the server certificate names; "" no certificate
		wantPlan string // the gateway job planned
	}{
		{"as provisioned: both jobs pinned", "client-a", "client-b", "10.0.0.2", "plan %s pin=client-b"},
		{"gateway unpinned by a tier change", "client-a", "", "10.0.0.2", "plan %s"},
		{"gateway pinned, its former client not known", "client-a", "client-c", "", "plan %s pin=client-c"},
	} {
		t.Run(c.name, func(t *testing.T) {
			w := newWorld()
			inst := w.healthy("inst-1", starter)
			w.gatewayPin, w.nodePin = c.pin, c.nodePin
			if c.certIP != "" {
				w.gatewayCert = certNaming(t, c.certIP)
			}
			passes(t, w.reconciler(t), 3)
			if len(w.calls) != 0 {
				t.Errorf("acted on a healthy instance: %q", w.calls)
			}
			if got := w.statuses[inst.ID]; !slices.Equal(got, []string{"running", "running", "running"}) {
				t.Errorf("statuses = %q; want running thrice", got)
			}
			wantPlan := strings.Replace(c.wantPlan, "%s", naming.GatewaysJobID(inst.ShortID), 1)
			wantNodes := "plan " + naming.NodesJobID(inst.ShortID)
			if c.nodePin != "" {
				wantNodes += " pin=" + c.nodePin
			}
			if !slices.Contains(w.planned, wantPlan) || !slices.Contains(w.planned, wantNodes) {
				t.Errorf("planned %q; want %q and %q each pass", w.planned, wantPlan, wantNodes)
			}
		})
	}
}

// TestPassPinsANodeJobAnEarlierBrokerLeftUnpinned: a single node's job
// registered without the pin (before provisions pinned it) could be started
// empty on another client; the loop pins it to the recorded client.
func TestPassPinsANodeJobAnEarlierBrokerLeftUnpinned(t *testing.T) {
	w := newWorld()
	inst := w.healthy("inst-1", starter)
	w.gatewayCert = certNaming(t, "10.0.0.2")
	w.nodePin = ""
	repairedOnce(t, w, inst, "provision "+inst.ShortID+" node=client-a port=31007 gateway=client-b",
		"nodes job definition drifted", "drift")
}

func TestPassPinsBackAGatewayJobPinnedToAnotherClientByHand(t *testing.T) {
	w := newWorld()
	inst := w.healthy("inst-1", starter)
	w.gatewayCert = certNaming(t, "10.0.0.2")
	w.gatewayPin = "client-c"
	passes(t, w.reconciler(t), 1)
	want := []string{"provision " + inst.ShortID + " node=client-a port=31007 gateway=client-b"}
	if !slices.Equal(w.calls, want) {
		t.Errorf("calls = %q; want %q", w.calls, want)
	}
	if got := w.statuses[inst.ID]; len(got) == 0 || got[0] != "repairing: gateways job definition drifted" {
		t.Errorf("statuses = %q", got)
	}
}

func TestPassReportsADriftWhoseDefinitionCannotBePlacedWithoutRegistering(t *testing.T) {
	w := newWorld()
	inst := w.healthy("inst-1", starter)
	w.drifted[naming.NodesJobID(inst.ShortID)] = "MemoryMB"
	w.unplaceable = true
	r := w.reconciler(t)
	passes(t, r, 1)
	if len(w.calls) != 0 {
		t.Errorf("registered a definition Nomad cannot place: %q", w.calls)
	}
	want := "degraded: nodes job definition drifted, the broker's definition cannot be placed (needs an operator)"
	if got := w.statuses[inst.ID]; !slices.Equal(got, []string{want}) {
		t.Errorf("statuses = %q; want %q", got, want)
	}
	if n := testutil.ToFloat64(r.Metrics().degraded); n != 1 {
		t.Errorf("degraded gauge = %v; want 1", n)
	}
}

func TestPassLeavesADriftedJobAloneWhileAnOperationRuns(t *testing.T) {
	w := newWorld()
	inst := w.healthy("inst-1", starter)
	w.drifted[naming.NodesJobID(inst.ShortID)] = "MemoryMB"
	w.latest[inst.ID] = store.Operation{ID: "op-2", InstanceID: inst.ID, Kind: store.KindUpdate, State: store.InProgress}
	passes(t, w.reconciler(t), 1)
	if len(w.calls) != 0 || len(w.statuses[inst.ID]) != 0 {
		t.Errorf("acted during an operation: calls %q, statuses %q", w.calls, w.statuses[inst.ID])
	}
	w.latest[inst.ID] = store.Operation{ID: "op-2", InstanceID: inst.ID, Kind: store.KindUpdate, State: store.Succeeded}
	w.repairBusy = true // an operation is being started as the loop looks
	passes(t, w.reconciler(t), 1)
	if len(w.calls) != 0 {
		t.Errorf("acted while an operation was being started: %q", w.calls)
	}
}

func TestPassDoesNotCompareARestoredNodeJob(t *testing.T) {
	w := newWorld()
	restored := w.healthy("inst-r", starter)
	w.drifted[naming.NodesJobID(restored.ShortID)] = "MemoryMB"
	w.pitrRestore = true
	passes(t, w.reconciler(t), 1)
	if len(w.calls) != 0 {
		t.Errorf("acted: %q", w.calls)
	}
	for _, p := range w.planned {
		if strings.HasPrefix(p, "plan "+naming.NodesJobID(restored.ShortID)) {
			t.Errorf("planned %q", p)
		}
	}
	if !slices.Contains(w.planned, "plan "+naming.GatewaysJobID(restored.ShortID)+" pin=client-b") {
		t.Errorf("planned %q; want the restored instance's gateway job", w.planned)
	}
}

func TestDiffFieldsNamesWhatWouldChangeAndOnlyNumbersValues(t *testing.T) {
	d := &api.JobDiff{Type: "Edited", Fields: []*api.FieldDiff{{Type: "None", Name: "Type", Old: "service", New: "service"}},
		TaskGroups: []*api.TaskGroupDiff{
			{Type: "None", Name: "node-1", Fields: []*api.FieldDiff{{Type: "None", Name: "Count", Old: "1", New: "1"}}},
			{Type: "Edited", Name: "node-0", Tasks: []*api.TaskDiff{{Type: "Edited", Name: "postgres",
				Fields: []*api.FieldDiff{{Type: "Edited", Name: "Env[PGPASSWORD]", Old: "s3cret", New: ""}},
				Objects: []*api.ObjectDiff{{Type: "Edited", Name: "Resources", Fields: []*api.FieldDiff{
					{Type: "Edited", Name: "MemoryMB", Old: "1024", New: "512"},
					{Type: "None", Name: "CPU", Old: "500", New: "500"}}}}}}}}}
	got := diffFields(d)
	want := []string{"TaskGroup node-0/Task postgres/Env[PGPASSWORD] edited", "TaskGroup node-0/Task postgres/Resources/MemoryMB: 1024 → 512"}
	if !slices.Equal(got, want) {
		t.Errorf("diffFields = %q; want %q", got, want)
	}
}

// TestPassFinishesARepairItsBrokerDidNotEnd: an instance still recorded as
// "repairing" when this broker holds the reconcile lock was left by a
// broker stopped mid-repair (killed after registering the jobs, say): the
// repair runs again to its end even though Nomad lacks nothing now.
func TestPassFinishesARepairItsBrokerDidNotEnd(t *testing.T) {
	w := newWorld()
	inst := w.healthy("inst-1", starter)
	w.instances[0].Status = "repairing: nodes job missing, gateways job missing"
	repairedOnce(t, w, inst, "provision "+inst.ShortID+" node=client-a port=31007", "a repair interrupted", "interrupted")
}

// repairedOnce runs a pass and checks it provisioned inst with call,
// recorded "repairing: "+what then "running", and counted one repair of
// reason and none of another; then that three more passes do nothing.
func repairedOnce(t *testing.T, w *world, inst store.Instance, call, what, reason string) {
	t.Helper()
	repairedOnceWith(t, w, inst, []string{call}, what, reason)
}

// repairedOnceWith is repairedOnce with the calls of the repair.
func repairedOnceWith(t *testing.T, w *world, inst store.Instance, calls []string, what, reason string) {
	t.Helper()
	r := w.reconciler(t)
	passes(t, r, 1)
	if !slices.Equal(w.calls, calls) {
		t.Errorf("calls = %q; want %q", w.calls, calls)
	}
	if got := w.statuses[inst.ID]; !slices.Equal(got, []string{"repairing: " + what, "running"}) {
		t.Errorf("statuses = %q; want repairing: %s, running", got, what)
	}
	for _, other := range []string{"lost", "drift", "interrupted"} {
		want := 0.0
		if other == reason {
			want = 1
		}
		if n := testutil.ToFloat64(r.Metrics().repairs.WithLabelValues(other, "repaired")); n != want {
			t.Errorf("repairs counted with reason %s: %v; want %v", other, n, want)
		}
	}
	w.calls = nil
	passes(t, r, 3)
	if len(w.calls) != 0 {
		t.Errorf("later passes acted: %q", w.calls)
	}
}
