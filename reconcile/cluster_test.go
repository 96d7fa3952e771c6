package reconcile

import (
	"slices"
	"strings"
	"testing"

	"github.com/pgbroker/pgbroker/naming"
	"github.com/pgbroker/pgbroker/store"
)

// healthyBusiness adds a provisioned Business instance whose node-0 runs
// on client-a and node-1 on client-b, as recorded.
func (w *world) healthyBusiness(id string) store.Instance {
	inst := w.healthy(id, business)
	inst.NodeClients = []string{"client-a", "client-b"}
	w.instances[len(w.instances)-1].NodeClients = inst.NodeClients
	w.nodeAllocs = running("client-a", "client-b")
	return inst
}

func TestPassRegistersABusinessInstanceNomadLostAgainEachNodeOnTheClientOfItsData(t *testing.T) {
	w := newWorld()
	inst := w.healthyBusiness("inst-1")
	w.lose(inst)
	r := w.reconciler(t)
	passes(t, r, 1)
	want := []string{
		"restore " + naming.NodesSecretPath(inst.ShortID),
		"restore pgbroker/instances/" + inst.ShortID + "/bindings/b1",
		"provision " + inst.ShortID + " node=client-a port=31007 clients=client-a,client-b nodes=2",
	}
	if !slices.Equal(w.calls, want) {
		t.Errorf("calls = %q; want %q", w.calls, want)
	}
	if got := w.statuses[inst.ID]; len(got) != 2 || !strings.HasPrefix(got[0], "repairing: nodes job stopped") || got[1] != "running" {
		t.Errorf("statuses = %q; want repairing then running", got)
	}
	// The repair's pins are the broker's own: no drift after.
	w.calls = nil
	passes(t, r, 3)
	if len(w.calls) != 0 {
		t.Errorf("later passes acted: %q", w.calls)
	}
}

func TestPassReportsABusinessInstanceWhoseNodesRecordIsDoubtfulDegraded(t *testing.T) {
	for _, c := range []struct {
		name    string
		clients []string
		want    string
	}{
		{"two nodes on one client", []string{"client-a", "client-a"}, "node-0 and node-1 are recorded on the same client client-a"},
		{"a client Nomad no longer has", []string{"client-a", "client-z"}, "the client client-z holding node-1's data is not in the Nomad cluster"},
		{"one node not recorded", []string{"client-a", ""}, "the client holding node-1's data is not recorded"},
		{"a record of another plan's nodes", []string{"client-a"}, "was never recorded"},
	} {
		t.Run(c.name, func(t *testing.T) {
			w := newWorld()
			inst := w.healthy("inst-1", business)
			w.instances[0].NodeClients = c.clients
			w.lose(inst)
			passes(t, w.reconciler(t), 1)
			if len(w.calls) != 0 {
				t.Errorf("acted: %q", w.calls)
			}
			got := w.statuses[inst.ID]
			if len(got) != 1 || !strings.Contains(got[0], c.want) || !strings.HasPrefix(got[0], "degraded:") {
				t.Errorf("statuses = %q; want degraded naming %q", got, c.want)
			}
		})
	}
}

// TestPassRecordsWhereEachBusinessNodeRuns: an instance provisioned before
// the record existed (or whose node Nomad placed anew) is recorded where
// its nodes run, once each runs on its own client; then a loss is repaired.
func TestPassRecordsWhereEachBusinessNodeRuns(t *testing.T) {
	w := newWorld()
	inst := w.healthy("inst-1", business)
	w.nodeAllocs = running("client-b", "client-b")
	r := w.reconciler(t)
	passes(t, r, 1)
	if got := w.instances[0].NodeClients; len(got) != 0 {
		t.Errorf("recorded %q from two nodes on one client", got)
	}
	w.nodeAllocs = running("client-c", "client-a")
	passes(t, r, 1)
	if got := w.instances[0].NodeClients; !slices.Equal(got, []string{"client-c", "client-a"}) {
		t.Errorf("recorded %q; want client-c, client-a", got)
	}
	w.lose(inst)
	passes(t, r, 1)
	if len(w.calls) == 0 || !strings.Contains(w.calls[len(w.calls)-1], "clients=client-c,client-a") {
		t.Errorf("calls = %q; want a provision pinning node-0 to client-c and node-1 to client-a", w.calls)
	}
}

// TestPassRollsBackABusinessNodeJobEditedByHand: the nodes are rolled onto
// the broker's definition one at a time (standbys first) before anything
// else is registered: never both nodes restarted at once. The running job
// is not pinned: neither is its repair.
func TestPassRollsBackABusinessNodeJobEditedByHand(t *testing.T) {
	w := newWorld()
	inst := w.healthyBusiness("inst-1")
	w.drifted[naming.NodesJobID(inst.ShortID)] = "MemoryMB"
	repairedOnceWith(t, w, inst, []string{"roll " + inst.ShortID, "provision " + inst.ShortID + " node=client-a port=31007 nodes=2"},
		"nodes job definition drifted", "drift")
	if len(w.groupPins) != 0 {
		t.Errorf("the repair pinned the nodes of a running job: %q", w.groupPins)
	}
}

func TestPassRegistersABusinessGatewayJobEditedByHandWithoutRollingTheNodes(t *testing.T) {
	w := newWorld()
	inst := w.healthyBusiness("inst-1")
	w.drifted[naming.GatewaysJobID(inst.ShortID)] = "MemoryMB"
	repairedOnceWith(t, w, inst, []string{"provision " + inst.ShortID + " node=client-a port=31007 nodes=2"},
		"gateways job definition drifted", "drift")
}

// TestPassFindsNoDriftInABusinessJobAsTheBrokerRegisteredIt: unpinned as
// a provision registers it, or pinned node by node as a repair does.
func TestPassFindsNoDriftInABusinessJobAsTheBrokerRegisteredIt(t *testing.T) {
	for _, pins := range [][]string{nil, {"client-a", "client-b"}} {
		w := newWorld()
		inst := w.healthyBusiness("inst-1")
		w.groupPins = pins
		passes(t, w.reconciler(t), 3)
		if len(w.calls) != 0 {
			t.Errorf("pins %q: acted: %q", pins, w.calls)
		}
		if got := w.statuses[inst.ID]; !slices.Equal(got, []string{"running", "running", "running"}) {
			t.Errorf("pins %q: statuses = %q", pins, got)
		}
		planned := 0
		for _, p := range w.planned {
			if strings.HasPrefix(p, "plan "+naming.NodesJobID(inst.ShortID)) {
				planned++
			}
		}
		if planned != 3 {
			t.Errorf("pins %q: planned %q; want the node job compared at each pass", pins, w.planned)
		}
	}
}

// TestPassFinishesABusinessRepairItsBrokerDidNotEnd: the jobs are back
// (registered before the broker was killed): the nodes are rolled, never
// registered at once, then the repair ends.
func TestPassFinishesABusinessRepairItsBrokerDidNotEnd(t *testing.T) {
	w := newWorld()
	inst := w.healthyBusiness("inst-1")
	w.groupPins = inst.NodeClients
	w.instances[0].Status = "repairing: nodes job missing, gateways job missing"
	repairedOnceWith(t, w, inst, []string{"roll " + inst.ShortID + " clients=client-a,client-b",
		"provision " + inst.ShortID + " node=client-a port=31007 clients=client-a,client-b nodes=2"}, "a repair interrupted", "interrupted")
}

func TestPassLeavesABusinessInstanceAloneWhileAnOperationRuns(t *testing.T) {
	w := newWorld()
	inst := w.healthyBusiness("inst-1")
	w.lose(inst)
	w.latest[inst.ID] = store.Operation{ID: "op-2", InstanceID: inst.ID, Kind: store.KindUpdate, State: store.InProgress}
	passes(t, w.reconciler(t), 2)
	if len(w.calls) != 0 || len(w.statuses[inst.ID]) != 0 {
		t.Errorf("acted while an operation runs: calls %q, statuses %q", w.calls, w.statuses[inst.ID])
	}
}

// TestPassPinsABusinessNodeJobPurgedWhileThePassReadNomad: the pass reads
// the node job (running, unpinned: left to the scheduler), then the
// gateways job and the Variables, gone; the node job is purged in between
// (an operator purging both jobs). The repair reads it again and registers
// it pinned to each node's data, not placed anew by the scheduler.
func TestPassPinsABusinessNodeJobPurgedWhileThePassReadNomad(t *testing.T) {
	w := newWorld()
	inst := w.healthyBusiness("inst-1")
	w.lose(inst)
	w.jobs[naming.NodesJobID(inst.ShortID)] = true // still there when the pass reads it
	w.onRepairLock = func() { delete(w.jobs, naming.NodesJobID(inst.ShortID)) }
	passes(t, w.reconciler(t), 1)
	want := "provision " + inst.ShortID + " node=client-a port=31007 clients=client-a,client-b nodes=2"
	if len(w.calls) == 0 || w.calls[len(w.calls)-1] != want {
		t.Errorf("calls = %q; want the last %q (pinned)", w.calls, want)
	}
}
