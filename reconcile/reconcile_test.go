package reconcile

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/pgbroker/pgbroker/naming"
	"github.com/pgbroker/pgbroker/store"
)

const (
	starter  = "postgresql-starter-512"
	sandbox  = "postgresql-sandbox"
	business = "postgresql-business-512"
)

func TestDecide(t *testing.T) {
	lostJobs := Finding{NodesJob: "missing", GatewaysJob: "stopped", Variables: []string{"nomad/jobs/pg-x-nodes"}}
	for _, c := range []struct {
		name       string
		ha         bool
		nodeID     string
		f          Finding
		want       Action
		wantStatus string
	}{
		{"nothing missing", false, "c", Finding{}, Leave, "running"},
		{"Business with nothing missing", true, "c", Finding{}, Leave, "running"},
		{"jobs and Variables lost", false, "c", lostJobs, Repair, "running"},
		{"only the gateway job stopped", false, "c", Finding{GatewaysJob: "stopped"}, Repair, "running"},
		{"only Variables lost", false, "c", Finding{Variables: []string{"p"}}, RestoreVariables, "running"},
		{"Business with its jobs lost, each node's client known", true, "", lostJobs, Repair, "running"},
		{"Business with its jobs lost, its nodes' clients not known", true, "c",
			Finding{NodesJob: "missing", GatewaysJob: "stopped", NodesUnplaced: "node-1's client is not recorded"}, Leave,
			"degraded: nodes job missing, gateways job stopped, and node-1's client is not recorded (Business: needs an operator)"},
		{"Business with only its gateway job lost, its nodes' clients not known", true, "",
			Finding{GatewaysJob: "missing"}, Repair, "running"},
		{"Business with only Variables lost", true, "", Finding{Variables: []string{"p"}}, RestoreVariables, "running"},
		{"Business with a job drifted", true, "", Finding{Drifted: []string{"nodes"}}, Repair, "running"},
		{"Business drift that cannot be placed", true, "", Finding{Drifted: []string{"nodes"}, DriftUnplaceable: true}, Leave,
			"degraded: nodes job definition drifted, the broker's definition cannot be placed (needs an operator)"},
		{"nodes Variable lost with no sealed copy", false, "c", Finding{NodesJob: "missing", NodesVariableLost: true}, Leave,
			"degraded: nodes job missing, nodes Variable missing with no sealed copy (needs an operator)"},
		{"no client recorded", false, "", Finding{NodesJob: "missing"}, Leave,
			"degraded: nodes job missing, and no Nomad client is recorded as holding its data (needs an operator)"},
	} {
		t.Run(c.name, func(t *testing.T) {
			got, status := Decide(c.ha, c.nodeID, c.f)
			if got != c.want || status != c.wantStatus {
				t.Errorf("Decide = %v, %q; want %v, %q", got, status, c.want, c.wantStatus)
			}
		})
	}
}

func TestPassBringsBackAStarterOnItsClientAndPortVariablesFirst(t *testing.T) {
	for _, plan := range []string{starter, sandbox} {
		t.Run(plan, func(t *testing.T) {
			w := newWorld()
			inst := w.healthy("inst-1", plan)
			w.lose(inst)
			r := w.reconciler(t)
			if err := r.Pass(context.Background()); err != nil {
				t.Fatal(err)
			}
			want := []string{
				"restore " + naming.NodesSecretPath(inst.ShortID),
				"restore pgbroker/instances/" + inst.ShortID + "/bindings/b1",
				"provision " + inst.ShortID + " node=client-a port=31007",
			}
			if !slices.Equal(w.calls, want) {
				t.Errorf("calls = %q; want %q", w.calls, want)
			}
			got := w.statuses[inst.ID]
			if len(got) != 2 || !strings.HasPrefix(got[0], "repairing: nodes job") || got[1] != "running" {
				t.Errorf("statuses = %q; want repairing: ..., running", got)
			}
			if n := testutil.ToFloat64(r.Metrics().repairs.WithLabelValues("lost", "repaired")); n != 1 {
				t.Errorf("repairs counted: %v; want 1", n)
			}
			// Back: the next pass finds nothing to do.
			w.calls = nil
			if err := r.Pass(context.Background()); err != nil {
				t.Fatal(err)
			}
			if len(w.calls) != 0 {
				t.Errorf("second pass acted: %q", w.calls)
			}
		})
	}
}

func TestPassLeavesAnInstanceAloneWhileAnOperationRuns(t *testing.T) {
	w := newWorld()
	inst := w.healthy("inst-1", starter)
	w.lose(inst)
	w.latest[inst.ID] = store.Operation{ID: "op-2", InstanceID: inst.ID, Kind: store.KindUpdate, State: store.InProgress}
	if err := w.reconciler(t).Pass(context.Background()); err != nil {
		t.Fatal(err)
	}
	if len(w.calls) != 0 || len(w.statuses[inst.ID]) != 0 {
		t.Errorf("acted during an operation: calls %q, statuses %q", w.calls, w.statuses[inst.ID])
	}
}

func TestPassLeavesAnInstanceWhoseOperationStartedWhileItLooked(t *testing.T) {
	for name, race := range map[string]func(w *world, id string){
		"being started (repair lock refused)": func(w *world, _ string) { w.repairBusy = true },
		"started": func(w *world, id string) {
			w.onRepairLock = func() {
				w.latest[id] = store.Operation{ID: "op-2", InstanceID: id, Kind: store.KindUpdate, State: store.InProgress}
			}
		},
		"started and finished (a deprovision)": func(w *world, id string) {
			w.onRepairLock = func() {
				w.latest[id] = store.Operation{ID: "op-2", InstanceID: id, Kind: store.KindDeprovision, State: store.Succeeded}
			}
		},
	} {
		t.Run(name, func(t *testing.T) {
			w := newWorld()
			inst := w.healthy("inst-1", starter)
			w.lose(inst)
			race(w, inst.ID)
			if err := w.reconciler(t).Pass(context.Background()); err != nil {
				t.Fatal(err)
			}
			if len(w.calls) != 0 || len(w.statuses[inst.ID]) != 0 {
				t.Errorf("acted: calls %q, statuses %q", w.calls, w.statuses[inst.ID])
			}
		})
	}
}

func TestPassReportsABusinessInstanceWhoseNodesWereNeverSeenRunningDegradedAndNeverTouchesIt(t *testing.T) {
	w := newWorld()
	inst := w.healthy("inst-1", business)
	w.lose(inst)
	r := w.reconciler(t)
	if err := r.Pass(context.Background()); err != nil {
		t.Fatal(err)
	}
	if len(w.calls) != 0 {
		t.Errorf("touched a Business instance: %q", w.calls)
	}
	want := "degraded: nodes job stopped, gateways job stopped, 2 Variables missing, and the client holding each node's data was never recorded" +
		" (the node job was lost before the broker saw it run) (Business: needs an operator)"
	if got := w.statuses[inst.ID]; !slices.Equal(got, []string{want}) {
		t.Errorf("statuses = %q; want %q", got, want)
	}
	if n := testutil.ToFloat64(r.Metrics().degraded); n != 1 {
		t.Errorf("degraded gauge = %v; want 1", n)
	}
}

func TestPassDoesNotMintSecretsWhenTheNodesVariableHasNoCopy(t *testing.T) {
	w := newWorld()
	inst := w.healthy("inst-1", starter)
	w.lose(inst)
	delete(w.copies, naming.NodesSecretPath(inst.ShortID))
	if err := w.reconciler(t).Pass(context.Background()); err != nil {
		t.Fatal(err)
	}
	if len(w.calls) != 0 {
		t.Errorf("acted: %q", w.calls)
	}
	if got := w.statuses[inst.ID]; len(got) != 1 || !strings.Contains(got[0], "no sealed copy (needs an operator)") {
		t.Errorf("statuses = %q", got)
	}
}

func TestPassRestoresLostVariablesWithoutRegisteringRunningJobs(t *testing.T) {
	w := newWorld()
	inst := w.healthy("inst-1", starter)
	delete(w.vars, "pgbroker/instances/"+inst.ShortID+"/bindings/b1")
	if err := w.reconciler(t).Pass(context.Background()); err != nil {
		t.Fatal(err)
	}
	want := []string{"restore pgbroker/instances/" + inst.ShortID + "/bindings/b1"}
	if !slices.Equal(w.calls, want) {
		t.Errorf("calls = %q; want %q", w.calls, want)
	}
}

func TestPassRecordsAFailedRepairAndTriesAgainNextPass(t *testing.T) {
	w := newWorld()
	inst := w.healthy("inst-1", starter)
	w.lose(inst)
	w.provisionErr = errors.New("wait for node: no client has room")
	r := w.reconciler(t)
	if err := r.Pass(context.Background()); err != nil {
		t.Fatal(err)
	}
	got := w.statuses[inst.ID]
	if len(got) != 2 || got[1] != "degraded: repair failed (nodes job stopped, gateways job stopped, 2 Variables missing): wait for node: no client has room" {
		t.Errorf("statuses = %q", got)
	}
	if n := testutil.ToFloat64(r.Metrics().repairs.WithLabelValues("lost", "failed")); n != 1 {
		t.Errorf("failed repairs counted: %v; want 1", n)
	}
	w.provisionErr, w.calls = nil, nil
	if err := r.Pass(context.Background()); err != nil {
		t.Fatal(err)
	}
	if len(w.calls) != 1 || !strings.HasPrefix(w.calls[0], "provision ") {
		t.Errorf("second pass calls = %q; want one provision", w.calls)
	}
}

func TestPassDoesNothingWhileAnotherBrokerReconciles(t *testing.T) {
	w := newWorld()
	inst := w.healthy("inst-1", starter)
	w.lose(inst)
	w.lockHeld = true
	if err := w.reconciler(t).Pass(context.Background()); err != nil {
		t.Fatal(err)
	}
	if len(w.calls) != 0 || len(w.statuses) != 0 {
		t.Errorf("acted without the lock: %q %q", w.calls, w.statuses)
	}
}
