package store_test

import (
	"context"
	"encoding/json"
	"testing"

	"github.com/pgbroker/pgbroker/store"
	"github.com/pgbroker/pgbroker/store/storetest"
)

// TestASucceededUpgradeChangesTheStoredVersionAndAFailedOneDoesNot: the
// version an instance runs changes only when its upgrade succeeds, and the
// upgrade's target is not kept among the instance's parameters.
func TestASucceededUpgradeChangesTheStoredVersionAndAFailedOneDoesNot(t *testing.T) {
	st := storetest.New(t)
	ctx := context.Background()
	inst := store.Instance{ID: "i-1", ShortID: "aaaaaaaaaaaa", ServiceID: "postgresql", PlanID: "p", OrganizationGUID: "o", SpaceGUID: "s",
		Parameters: json.RawMessage(`{"backup_time":"02:00"}`), PostgresVersion: "15.18"}
	created, err := st.Instances().CreateInstance(ctx, inst, store.Operation{ID: "op-1", Kind: store.KindProvision, PlanID: "p"},
		store.PortRange{Min: 40000, Max: 40009}, noEnqueue)
	if err != nil {
		t.Fatal(err)
	}
	if created.PostgresVersion != "15.18" {
		t.Fatalf("created with version %q, want 15.18", created.PostgresVersion)
	}
	if err := st.Instances().FinishOperation(ctx, "op-1", store.Succeeded, "ready"); err != nil {
		t.Fatal(err)
	}
	upgrade := json.RawMessage(`{"postgres_version":"15.20"}`)
	steps := []struct {
		id    string
		state store.OperationState
		want  string
	}{
		{"op-2", store.Failed, "15.18"},
		{"op-3", store.Succeeded, "15.20"},
	}
	for _, s := range steps {
		op := store.Operation{ID: s.id, InstanceID: "i-1", Kind: store.KindUpdate, PlanID: "p", Parameters: upgrade}
		if err := st.Instances().StartOperation(ctx, op, noEnqueue); err != nil {
			t.Fatal(err)
		}
		if err := st.Instances().FinishOperation(ctx, s.id, s.state, "done"); err != nil {
			t.Fatal(err)
		}
		got, err := st.Instances().GetInstance(ctx, "i-1")
		if err != nil {
			t.Fatal(err)
		}
		if got.PostgresVersion != s.want {
			t.Fatalf("after a %s upgrade the instance runs %q, want %q", s.state, got.PostgresVersion, s.want)
		}
		var params map[string]any
		if err := json.Unmarshal(got.Parameters, &params); err != nil || params["backup_time"] != "02:00" || params["postgres_version"] != nil {
			t.Fatalf("parameters after the upgrade: %s (%v), want backup_time kept and no postgres_version", got.Parameters, err)
		}
		cached, _, _, err := st.Instances().InstanceOperation(ctx, "i-1", "")
		if err != nil || cached.PostgresVersion != s.want {
			t.Fatalf("InstanceOperation reads version %q (%v), want %q", cached.PostgresVersion, err, s.want)
		}
	}
}
