package pgadmin

import (
	"testing"

	"github.com/pgbroker/pgbroker/naming"
	"github.com/pgbroker/pgbroker/users"
)

func TestNamesOfAndJobIDs(t *testing.T) {
	n := NamesOf(naming.ShortID("5f2b6c1e-9a1d-4b43-8a8e-0c4e2f1d7a11"))
	if n.Database != n.Owner || n.Reader != n.Database+"_ro" {
		t.Fatalf("names %+v", n)
	}
	if naming.NodesJobID("abc") != "pg-abc-nodes" || naming.GatewaysJobID("abc") != "pg-abc-gateways" {
		t.Fatal("job ids changed")
	}
}

func TestBindingRolesHaveTheShapeUsersCannotTake(t *testing.T) {
	for _, id := range []string{"a", "binding-1", "6f1c7c0e-0d43-4b0b-9d2e-8f2e3f1a2b3c"} {
		role := naming.BindingRole(id)
		if !users.IsBindingRole(role) || users.CheckUsername(role) == nil {
			t.Errorf("binding role %s: IsBindingRole=%v, CheckUsername accepts it", role, users.IsBindingRole(role))
		}
	}
	n := NamesOf(naming.ShortID("x"))
	for _, role := range []string{n.Owner, n.Reader, naming.AdminUser} {
		if users.CheckUsername(role) == nil {
			t.Errorf("CheckUsername accepts the broker's role %s", role)
		}
	}
}
