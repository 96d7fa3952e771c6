package pgadmin

import (
	"errors"
	"os"
	"path/filepath"
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

func TestExtensionAllowList(t *testing.T) {
	for _, name := range []string{"pgcrypto", "hstore", "pg_stat_statements", "uuid-ossp"} {
		if err := CheckExtensions([]string{name}); err != nil {
			t.Errorf("%s refused: %v", name, err)
		}
	}
	for _, name := range []string{"postgis", "adminpack", "file_fdw", "plpgsql", ""} {
		err := CheckExtensions([]string{"hstore", name})
		if err == nil || !strings.Contains(err.Error(), "pgcrypto") || !strings.Contains(err.Error(), `"`+name+`"`) {
			t.Errorf("%q: err = %v, want one naming it and the allowed extensions", name, err)
		}
	}
	if got := PreloadLibraries([]string{"hstore", "pg_stat_statements", "pgcrypto"}); len(got) != 1 || got[0] != "pg_stat_statements" {
		t.Errorf("PreloadLibraries = %v", got)
	}
	if !NeedsRestart(nil, []string{"pg_stat_statements"}) || NeedsRestart([]string{"pgcrypto"}, []string{"hstore"}) {
		t.Error("NeedsRestart misjudges")
	}
	for i := 1; i < len(Contrib); i++ {
		if Contrib[i-1].Name >= Contrib[i].Name {
			t.Fatalf("Contrib is not sorted at %s", Contrib[i].Name)
		}
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

// TestAllowedExtensionsAreInstalled: every allowed extension has its control
// file where Debian's postgresql-contrib puts it (what the raw_exec nodes run).
func TestAllowedExtensionsAreInstalled(t *testing.T) {
	const dir = "/usr/share/postgresql/15/extension"
	if _, err := os.Stat(dir); err != nil {
		msg := dir + " is missing: install postgresql-15 and postgresql-contrib (scripts/install-deps.sh)"
		if os.Getenv("CI") == "true" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	for _, e := range Contrib {
		if _, err := os.Stat(filepath.Join(dir, e.Name+".control")); err != nil {
			t.Errorf("allowed extension %s is not installed: %v", e.Name, err)
		}
	}
}
