package provisioner

import (
	"regexp"
	"testing"

	"github.com/pgbroker/pgbroker/naming"
	"github.com/pgbroker/pgbroker/pgadmin"
)

func TestDatabaseNamesAndJobIDs(t *testing.T) {
	n := DatabaseNames(naming.ShortID("5f2b6c1e-9a1d-4b43-8a8e-0c4e2f1d7a11"))
	if n.Database != n.Owner || n.Reader != n.Database+"_ro" {
		t.Fatalf("names %+v", n)
	}
	if NodesJobID("abc") != "pg-abc-nodes" || GatewaysJobID("abc") != "pg-abc-gateways" {
		t.Fatal("job ids changed")
	}
}

func TestRandomStringUsesTheAlphabet(t *testing.T) {
	seen := map[string]bool{}
	for i := 0; i < 100; i++ {
		s := randomString(32)
		if !regexp.MustCompile(`^[A-Za-z0-9]{32}$`).MatchString(s) {
			t.Fatalf("password %q has other characters", s)
		}
		if seen[s] {
			t.Fatal("repeated password")
		}
		seen[s] = true
	}
}

func TestBindingRolesHaveTheShapeUsersCannotTake(t *testing.T) {
	for _, id := range []string{"a", "binding-1", "6f1c7c0e-0d43-4b0b-9d2e-8f2e3f1a2b3c"} {
		role := naming.BindingRole(id)
		if !pgadmin.IsBindingRole(role) || pgadmin.CheckUsername(role) == nil {
			t.Errorf("binding role %s: IsBindingRole=%v, CheckUsername accepts it", role, pgadmin.IsBindingRole(role))
		}
	}
	n := DatabaseNames(naming.ShortID("x"))
	for _, role := range []string{n.Owner, n.Reader, naming.AdminUser} {
		if pgadmin.CheckUsername(role) == nil {
			t.Errorf("CheckUsername accepts the broker's role %s", role)
		}
	}
}

func TestGeneratedPasswordsPassTheRules(t *testing.T) {
	pw := GeneratePassword()
	if len(pw) != 64 || pgadmin.CheckPassword(pw) != nil || pw == GeneratePassword() {
		t.Fatalf("generated password of %d characters, rules: %v", len(pw), pgadmin.CheckPassword(pw))
	}
}
