package store_test

import (
	"context"
	"errors"
	"testing"

	"github.com/pgbroker/pgbroker/store"
	"github.com/pgbroker/pgbroker/store/storetest"
)

// TestOneBrokerReconcilesAndARepairHoldsOffNewOperations: of two Store
// values (two broker replicas) one holds the reconcile lock at a time; an
// instance under repair refuses StartOperation with ErrRepairInFlight (an
// ErrOperationInFlight), another instance does not, and once the repair
// ends the operation starts. The status column is read back by both
// GetInstance and InstanceOperation.
func TestOneBrokerReconcilesAndARepairHoldsOffNewOperations(t *testing.T) {
	a, url := storetest.NewWithURL(t)
	ctx := context.Background()
	b, err := store.Open(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	for i, id := range []string{"i-1", "i-2"} {
		inst := store.Instance{ID: id, ShortID: []string{"aaaaaaaaaaaa", "bbbbbbbbbbbb"}[i], ServiceID: "postgresql", PlanID: "p", OrganizationGUID: "o", SpaceGUID: "s"}
		if _, err := a.Instances().CreateInstance(ctx, inst, store.Operation{ID: "op-" + id, Kind: store.KindProvision, PlanID: "p"},
			store.PortRange{Min: 40000, Max: 40009}, noEnqueue); err != nil {
			t.Fatal(err)
		}
		if err := a.Instances().FinishOperation(ctx, "op-"+id, store.Succeeded, "ready"); err != nil {
			t.Fatal(err)
		}
	}
	lock, ok, err := a.TryReconcileLock(ctx)
	if err != nil || !ok {
		t.Fatalf("first reconcile lock: %v %v", ok, err)
	}
	if _, ok, err := b.TryReconcileLock(ctx); err != nil || ok {
		t.Fatalf("a second broker took the reconcile lock too: %v %v", ok, err)
	}
	if ok, err := lock.TryRepair(ctx, "i-1"); err != nil || !ok {
		t.Fatalf("repair lock: %v %v", ok, err)
	}
	update := func(st *store.Store, opID, instanceID string) error {
		return st.Instances().StartOperation(ctx, store.Operation{ID: opID, InstanceID: instanceID, Kind: store.KindUpdate, PlanID: "p"}, noEnqueue)
	}
	if err := update(b, "op-u1", "i-1"); !errors.Is(err, store.ErrRepairInFlight) || !errors.Is(err, store.ErrOperationInFlight) {
		t.Fatalf("StartOperation during a repair: %v, want ErrRepairInFlight", err)
	}
	if err := update(b, "op-u2", "i-2"); err != nil {
		t.Fatalf("StartOperation on another instance during a repair: %v", err)
	}
	if err := lock.EndRepair(ctx, "i-1"); err != nil {
		t.Fatal(err)
	}
	if err := update(b, "op-u1", "i-1"); err != nil {
		t.Fatalf("StartOperation after the repair: %v", err)
	}
	lock.Release()
	if l, ok, err := b.TryReconcileLock(ctx); err != nil || !ok {
		t.Fatalf("reconcile lock after its release: %v %v", ok, err)
	} else {
		l.Release()
	}

	if err := a.Instances().SetStatus(ctx, "i-2", "degraded: nodes job missing"); err != nil {
		t.Fatal(err)
	}
	got, err := b.Instances().GetInstance(ctx, "i-2")
	if err != nil || got.Status != "degraded: nodes job missing" {
		t.Fatalf("GetInstance status %q, %v", got.Status, err)
	}
	inst, _, _, err := b.Instances().InstanceOperation(ctx, "i-2", "")
	if err != nil || inst.Status != "degraded: nodes job missing" {
		t.Fatalf("InstanceOperation status %q, %v", inst.Status, err)
	}
}
