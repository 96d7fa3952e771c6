package store_test

import (
	"context"
	"slices"
	"testing"

	"github.com/pgbroker/pgbroker/store"
	"github.com/pgbroker/pgbroker/store/storetest"
)

// TestEachNodesClientIsRecordedAndReadBackEverywhere: the clients of a
// Business instance's nodes are none until recorded, then read back by
// GetInstance, LiveInstances and InstanceOperation in node order, and
// cleared by recording none (a move to a single-node plan).
func TestEachNodesClientIsRecordedAndReadBackEverywhere(t *testing.T) {
	st := storetest.New(t)
	ctx := context.Background()
	inst := store.Instance{ID: "i-1", ShortID: "aaaaaaaaaaaa", ServiceID: "postgresql", PlanID: "p", OrganizationGUID: "o", SpaceGUID: "s"}
	if _, err := st.Instances().CreateInstance(ctx, inst, store.Operation{ID: "op-1", Kind: store.KindProvision, PlanID: "p"},
		store.PortRange{Min: 40000, Max: 40009}, noEnqueue); err != nil {
		t.Fatal(err)
	}
	if err := st.Instances().FinishOperation(ctx, "op-1", store.Succeeded, "ready"); err != nil {
		t.Fatal(err)
	}
	read := func() [][]string {
		t.Helper()
		got, err := st.Instances().GetInstance(ctx, "i-1")
		if err != nil {
			t.Fatal(err)
		}
		live, err := st.Instances().LiveInstances(ctx)
		if err != nil || len(live) != 1 {
			t.Fatalf("live instances %d, %v", len(live), err)
		}
		withOp, _, _, err := st.Instances().InstanceOperation(ctx, "i-1", "")
		if err != nil {
			t.Fatal(err)
		}
		return [][]string{got.NodeClients, live[0].NodeClients, withOp.NodeClients}
	}
	check := func(want []string) {
		t.Helper()
		for i, got := range read() {
			if len(got) != len(want) || (len(want) > 0 && !slices.Equal(got, want)) {
				t.Errorf("read %d: node clients %q; want %q", i, got, want)
			}
		}
	}
	check(nil)
	for _, want := range [][]string{{"client-b", "client-a"}, nil} {
		if err := st.Instances().SetNodeClients(ctx, "i-1", want); err != nil {
			t.Fatal(err)
		}
		check(want)
	}
}
