package provisioner

import (
	"regexp"
	"testing"

	"github.com/pgbroker/pgbroker/users"
)

func TestHCLVarsQuotesEveryValue(t *testing.T) {
	got := hclVars(map[string]any{
		"instance":    "abc",
		"memory_mib":  512,
		"datacenters": []string{"dc1", "dc\"2"},
		"data_root":   "/srv/${evil}/%{x}",
	})
	want := "data_root = \"/srv/$${evil}/%%{x}\"\n" +
		"datacenters = [\"dc1\", \"dc\\\"2\"]\n" +
		"instance = \"abc\"\n" +
		"memory_mib = 512\n"
	if got != want {
		t.Fatalf("got\n%s\nwant\n%s", got, want)
	}
}

func TestNamesAreStableAndSafe(t *testing.T) {
	id := "5f2b6c1e-9a1d-4b43-8a8e-0c4e2f1d7a11"
	first, again := ShortID(id), ShortID(id)
	if first != again || first == ShortID(id+"x") {
		t.Fatal("ShortID is not a stable function of the id")
	}
	hex12 := regexp.MustCompile(`^[0-9a-f]{12}$`)
	if !hex12.MatchString(ShortID(id)) {
		t.Fatalf("ShortID %q is not 12 hex characters", ShortID(id))
	}
	role := BindingRole("../weird binding id; DROP TABLE")
	if !regexp.MustCompile(`^u_[0-9a-f]{12}$`).MatchString(role) {
		t.Fatalf("BindingRole %q is not a plain identifier", role)
	}
	n := DatabaseNames(ShortID(id))
	if n.Database != n.Owner || n.Reader != n.Database+"_ro" {
		t.Fatalf("names %+v", n)
	}
	if NodesJobID("abc") != "pg-abc-nodes" || GatewaysJobID("abc") != "pg-abc-gateways" {
		t.Fatal("job ids changed")
	}
}

func TestBindingRolesHaveTheShapeUsersCannotTake(t *testing.T) {
	for _, id := range []string{"a", "binding-1", "6f1c7c0e-0d43-4b0b-9d2e-8f2e3f1a2b3c"} {
		role := BindingRole(id)
		if !users.IsBindingRole(role) || users.CheckUsername(role) == nil {
			t.Errorf("binding role %s: IsBindingRole=%v, CheckUsername accepts it", role, users.IsBindingRole(role))
		}
	}
	n := DatabaseNames(ShortID("x"))
	for _, role := range []string{n.Owner, n.Reader, AdminUser} {
		if users.CheckUsername(role) == nil {
			t.Errorf("CheckUsername accepts the broker's role %s", role)
		}
	}
}
