package broker

import (
	"context"
	"net/http"
	"testing"

	"github.com/pivotal-cf/brokerapi/v10/domain"

	"github.com/pgbroker/pgbroker/catalog"
	"github.com/pgbroker/pgbroker/store"
)

// TestPublishedGUIDsAndCatalogIDsBothWork: with PGBROKER_CATALOG_GUIDS the
// platform provisions with GUIDs, the state database keeps catalog ids, GET
// instance answers GUIDs, and requests with the catalog ids of before (an
// instance created before the switch) keep working; another deployment's
// GUID is a 400.
func TestPublishedGUIDsAndCatalogIDsBothWork(t *testing.T) {
	f := newFixture(t, store.PortRange{Min: 40070, Max: 40079}, func(c *catalog.Catalog) { c.PublishGUIDs("east") })
	ctx := context.Background()
	svcGUID, planGUID := catalog.GUID("east", "postgresql"), catalog.GUID("east", "postgresql-sandbox")
	spec, err := f.b.Provision(ctx, "i-1", domain.ProvisionDetails{ServiceID: svcGUID, PlanID: planGUID, OrganizationGUID: "o", SpaceGUID: "s"}, true)
	if err != nil {
		t.Fatalf("provision with GUIDs: %v", err)
	}
	_ = f.st.Instances().FinishOperation(ctx, spec.OperationData, store.Succeeded, "ready")
	inst, _ := f.st.Instances().GetInstance(ctx, "i-1")
	if inst.ServiceID != "postgresql" || inst.PlanID != "postgresql-sandbox" {
		t.Fatalf("stored %s/%s, want the catalog ids", inst.ServiceID, inst.PlanID)
	}
	got, err := f.b.GetInstance(ctx, "i-1", domain.FetchInstanceDetails{})
	if err != nil || got.ServiceID != svcGUID || got.PlanID != planGUID {
		t.Fatalf("GET instance: %s/%s %v, want the GUIDs", got.ServiceID, got.PlanID, err)
	}
	if _, err := f.b.Bind(ctx, "i-1", "b-guid", domain.BindDetails{ServiceID: svcGUID, PlanID: planGUID}, false); err != nil {
		t.Fatalf("bind with GUIDs: %v", err)
	}
	if _, err := f.b.Bind(ctx, "i-1", "b-ids", domain.BindDetails{ServiceID: "postgresql", PlanID: "postgresql-sandbox"}, false); err != nil {
		t.Fatalf("bind with the catalog ids: %v", err)
	}
	_, err = f.b.Bind(ctx, "i-1", "b-west", domain.BindDetails{ServiceID: catalog.GUID("west", "postgresql"), PlanID: planGUID}, false)
	if status(err) != http.StatusBadRequest {
		t.Fatalf("bind with another deployment's service GUID: %v, want 400", err)
	}
	upd, err := f.b.Update(ctx, "i-1", domain.UpdateDetails{ServiceID: svcGUID, PlanID: catalog.GUID("east", "postgresql-starter-512")}, true)
	if err != nil || !upd.IsAsync {
		t.Fatalf("update to a plan by GUID: %+v %v", upd, err)
	}
	if op, _ := f.st.Instances().LatestOperation(ctx, "i-1"); op.PlanID != "postgresql-starter-512" {
		t.Fatalf("update recorded plan %q, want the catalog id", op.PlanID)
	}
}
