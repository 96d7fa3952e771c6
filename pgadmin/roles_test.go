package pgadmin

import (
	"errors"
	"testing"

	"github.com/pgbroker/pgbroker/users"
)

// TestUsersCannotTakeTheRestoreRole: the login pg_restore runs as is one of
// the names package users reserves; a user of that name could log in as the
// restore.
func TestUsersCannotTakeTheRestoreRole(t *testing.T) {
	var re *users.RuleError
	if err := users.CheckUsername(RestoreRole); !errors.As(err, &re) || re.Rule != "UsernameReserved" {
		t.Fatalf("CheckUsername(%q) = %v, want UsernameReserved", RestoreRole, err)
	}
}
