// Package users holds the rules and shapes of an instance's database users
// (seed 003 "Managing Users"): which usernames and passwords are allowed,
// which names the broker keeps for itself, the user as the management API
// shows it, and the passwords the broker generates. It imports nothing of
// pgbroker's, so that front doors (mgmtapi) check input without the executor
// (pgadmin creates the roles).
package users

import (
	"fmt"
	"regexp"
	"slices"
	"strings"
)

// RuleError is a username or password that breaks one of the seeds' rules
// (seed 003 "Creating a New User"). Rule names the rule broken, in words an
// API client can switch on ("UsernameLength"); Msg is a sentence naming it.
type RuleError struct {
	Field string // "username" or "password"
	Rule  string
	Msg   string
}

func (e *RuleError) Error() string { return e.Msg }

// Seed 003 "Creating a New User" bounds, in characters.
const (
	UsernameMinLength = 6
	UsernameMaxLength = 32
	PasswordMinLength = 8
	PasswordMaxLength = 64
)

var (
	usernameCharacters = regexp.MustCompile(`^[A-Za-z0-9_]*$`)
	bindingRole        = regexp.MustCompile(`^u_[0-9a-f]{12}$`)
	instanceRole       = regexp.MustCompile(`^db_[0-9a-f]{12}(_ro)?$`)
	// brokerRoles are the roles the broker makes itself: its superuser, the
	// login pg_restore runs as (pgadmin.RestoreRole) and the replication role.
	brokerRoles = []string{"pgbroker_admin", "pgbroker_restore", "replicator"}
)

// IsBindingRole reports whether name has the shape of an OSB binding's login
// role ("u_" and 12 lower-case hex characters; provisioner.BindingRole).
func IsBindingRole(name string) bool { return bindingRole.MatchString(name) }

// CheckUsername applies the seed's username rules: 6 to 32 characters,
// letters, digits and underscores only, starting with a letter. It also
// refuses the names the broker uses itself (binding roles u_<12 hex>,
// instance roles db_<12 hex> and db_<12 hex>_ro, its superuser, restore
// and replication roles) and PostgreSQL's reserved pg_ prefix. Errors: *RuleError.
func CheckUsername(name string) error {
	n := len([]rune(name))
	switch {
	case n < UsernameMinLength || n > UsernameMaxLength:
		return &RuleError{"username", "UsernameLength",
			fmt.Sprintf("username must be %d to %d characters long, got %d", UsernameMinLength, UsernameMaxLength, n)}
	case !usernameCharacters.MatchString(name):
		return &RuleError{"username", "UsernameCharacters",
			"username may contain only letters, digits and underscores (_)"}
	case !isASCIILetter(name[0]):
		return &RuleError{"username", "UsernameFirstCharacter", "username must start with a letter"}
	case IsBindingRole(name) || instanceRole.MatchString(name) || slices.Contains(brokerRoles, name) ||
		strings.HasPrefix(strings.ToLower(name), "pg_"):
		return &RuleError{"username", "UsernameReserved",
			fmt.Sprintf("username %q is reserved: names u_<12 hex>, db_<12 hex>, pg_…, pgbroker_admin, pgbroker_restore and replicator belong to the broker or PostgreSQL", name)}
	}
	return nil
}

// CheckPassword applies the seed's password rules: 8 to 64 characters,
// without " or '. Passwords must also be printable ASCII: the broker hands
// PostgreSQL a SCRAM-SHA-256 verifier, computed without SASLprep, which is
// the identity on ASCII only. Errors: *RuleError.
func CheckPassword(password string) error {
	n := len([]rune(password))
	switch {
	case n < PasswordMinLength || n > PasswordMaxLength:
		return &RuleError{"password", "PasswordLength",
			fmt.Sprintf("password must be %d to %d characters long, got %d", PasswordMinLength, PasswordMaxLength, n)}
	case strings.ContainsAny(password, `"'`):
		return &RuleError{"password", "PasswordQuote", `password must not contain the character " or '`}
	}
	for _, r := range password {
		if r < 0x20 || r > 0x7e {
			return &RuleError{"password", "PasswordCharacters", "password must be printable ASCII (no control or non-ASCII characters)"}
		}
	}
	return nil
}

func isASCIILetter(b byte) bool { return (b >= 'a' && b <= 'z') || (b >= 'A' && b <= 'Z') }
