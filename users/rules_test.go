package users

import (
	"errors"
	"strings"
	"testing"
)

func TestUsernameRulesAtTheirBounds(t *testing.T) {
	cases := []struct {
		name string
		rule string // "" when valid
	}{
		{"abcde", "UsernameLength"},                       // 5: one short
		{"abcdef", ""},                                    // 6: shortest
		{"a" + strings.Repeat("b", 31), ""},               // 32: longest
		{"a" + strings.Repeat("b", 32), "UsernameLength"}, // 33: one long
		{"", "UsernameLength"},
		{"Ab_c_9", ""},
		{"user-name", "UsernameCharacters"},
		{"user name", "UsernameCharacters"},
		{"usérname", "UsernameCharacters"},
		{"user\"name", "UsernameCharacters"},
		{"1abcdef", "UsernameFirstCharacter"},
		{"_abcdef", "UsernameFirstCharacter"},
		{"u_0123456789ab", "UsernameReserved"},
		{"u_0123456789abc", ""}, // not a binding role's shape
		{"db_0123456789ab", "UsernameReserved"},
		{"db_0123456789ab_ro", "UsernameReserved"},
		{"pg_monitor_x", "UsernameReserved"},
		{"PG_things", "UsernameReserved"},
		{"pgbroker_admin", "UsernameReserved"},
		{"pgbroker_restore", "UsernameReserved"}, // the restore's login (RestoreRole)
		{"pgbroker_restorer", ""},
		{"replicator", "UsernameReserved"},
	}
	for _, c := range cases {
		err := CheckUsername(c.name)
		checkRule(t, "username "+c.name, err, c.rule)
	}
}

func TestPasswordRulesAtTheirBounds(t *testing.T) {
	cases := []struct {
		name, password, rule string
	}{
		{"7 characters", strings.Repeat("a", 7), "PasswordLength"},
		{"8 characters", strings.Repeat("a", 8), ""},
		{"64 characters", strings.Repeat("a", 64), ""},
		{"65 characters", strings.Repeat("a", 65), "PasswordLength"},
		{"double quote", `abcd"efgh`, "PasswordQuote"},
		{"single quote", `abcd'efgh`, "PasswordQuote"},
		{"symbols and space", `a b!#$%&()*+,-./:;<=>?@[\]^_{|}~`, ""},
		{"non-ASCII", "pässwörd1", "PasswordCharacters"},
		{"control character", "abcd\tefgh", "PasswordCharacters"},
	}
	for _, c := range cases {
		checkRule(t, c.name, CheckPassword(c.password), c.rule)
	}
}

func TestBindingRoleShape(t *testing.T) {
	if !IsBindingRole("u_0123456789ab") || IsBindingRole("u_0123456789AB") || IsBindingRole("myuser") {
		t.Fatal("IsBindingRole misjudges")
	}
}

func checkRule(t *testing.T, what string, err error, rule string) {
	t.Helper()
	if rule == "" {
		if err != nil {
			t.Errorf("%s: refused: %v", what, err)
		}
		return
	}
	var re *RuleError
	if !errors.As(err, &re) || re.Rule != rule {
		t.Errorf("%s: err = %v, want rule %s", what, err, rule)
	}
}
