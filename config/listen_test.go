package config

import (
	"slices"
	"strings"
	"testing"
)

// TestListenTakesPORTWhenPGBROKER_LISTENIsUnset: Cloud Foundry hands the app
// its port in PORT only; PGBROKER_LISTEN, when set, wins.
func TestListenTakesPORTWhenPGBROKER_LISTENIsUnset(t *testing.T) {
	cases := []struct{ listen, port, want string }{
		{"", "", "127.0.0.1:8080"},
		{"", "8081", ":8081"},
		{"10.0.0.1:9000", "8081", "10.0.0.1:9000"},
		{"127.0.0.1:9000", "", "127.0.0.1:9000"},
	}
	for _, tc := range cases {
		setValid(t)
		t.Setenv("PGBROKER_LISTEN", tc.listen)
		t.Setenv("PORT", tc.port)
		c, err := Load()
		if err != nil {
			t.Fatalf("PGBROKER_LISTEN=%q PORT=%q: %v", tc.listen, tc.port, err)
		}
		if c.Listen != tc.want {
			t.Errorf("PGBROKER_LISTEN=%q PORT=%q: listen on %q, want %q", tc.listen, tc.port, c.Listen, tc.want)
		}
	}
}

func TestBadPORTIsRefusedNamingPORT(t *testing.T) {
	for _, port := range []string{"http", "0", "65536", "-1", "80 80"} {
		setValid(t)
		t.Setenv("PORT", port)
		_, err := Load()
		if err == nil || !strings.HasPrefix(err.Error(), "PORT ") {
			t.Errorf("PORT=%q: error %v, want one naming PORT", port, err)
		}
	}
}

// TestVariablesNameEverySettingLoadReads: the prefixed and unprefixed names
// Load reads are listed, and names it does not read are not.
func TestVariablesNameEverySettingLoadReads(t *testing.T) {
	names := Variables()
	for _, want := range []string{"PORT", "PGBROKER_LISTEN", "PGBROKER_USERNAME", "DATABASE_URL", "PGBROKER_DATABASE_URL",
		"NOMAD_ADDR", "NOMAD_TOKEN", "PGBROKER_ETCD_ENDPOINTS", "PGBROKER_BACKUP_S3_ENDPOINT", "PGBROKER_PITR_S3_BUCKET"} {
		if !slices.Contains(names, want) {
			t.Errorf("Variables() lacks %s: %v", want, names)
		}
	}
	for _, bad := range []string{"PGBROKER_NOMAD_ADDR_TYPO", "LISTEN", "USERNAME"} {
		if slices.Contains(names, bad) {
			t.Errorf("Variables() lists %s, which Load does not read", bad)
		}
	}
}
