package catalog

import (
	"testing"

	"github.com/google/uuid"
)

// TestGUIDsAreStableAndPerDeployment: the same deployment and id give the
// same GUID at every start; another deployment gets another one.
func TestGUIDsAreStableAndPerDeployment(t *testing.T) {
	a, again, b := GUID("east", "postgresql-sandbox"), GUID("east", "postgresql-sandbox"), GUID("west", "postgresql-sandbox")
	if a != again || a == b {
		t.Fatalf("GUIDs %s %s %s: want the first two equal, the third different", a, again, b)
	}
	if u, err := uuid.Parse(a); err != nil || u.Version() != 5 {
		t.Fatalf("%s is not a UUIDv5: %v", a, err)
	}
	if GUID("east", "postgresql") == GUID("east", "postgresql-sandbox") {
		t.Fatal("service and plan share a GUID")
	}
}

// TestPublishGUIDsKeepsCatalogIDsWorking: after PublishGUIDs the catalog
// publishes only GUIDs, and Plan and Service find entries by either id.
func TestPublishGUIDsKeepsCatalogIDsWorking(t *testing.T) {
	c, err := Default()
	if err != nil {
		t.Fatal(err)
	}
	c.PublishGUIDs("east")
	seen := map[string]bool{}
	for _, s := range c.BrokerServices() {
		if s.ID != GUID("east", "postgresql") {
			t.Errorf("service published as %q", s.ID)
		}
		for _, p := range s.Plans {
			if _, err := uuid.Parse(p.ID); err != nil || seen[p.ID] {
				t.Errorf("plan published as %q (%v, seen before: %v)", p.ID, err, seen[p.ID])
			}
			seen[p.ID] = true
		}
	}
	for _, id := range []string{"postgresql-starter-512", GUID("east", "postgresql-starter-512")} {
		svc, plan, ok := c.Plan(id)
		if !ok || plan.ID != "postgresql-starter-512" || svc.ID != "postgresql" {
			t.Errorf("Plan(%q) = %s/%s %v, want postgresql/postgresql-starter-512", id, svc.ID, plan.ID, ok)
		}
		if _, err := c.ValidateParameters(id, ActionBind, []byte(`{"read_only":true}`)); err != nil {
			t.Errorf("ValidateParameters(%q): %v", id, err)
		}
	}
	if _, _, ok := c.Plan(GUID("west", "postgresql-starter-512")); ok {
		t.Error("another deployment's GUID found a plan")
	}
	if _, ok := c.Service(GUID("east", "postgresql")); !ok {
		t.Error("Service by GUID not found")
	}
}
