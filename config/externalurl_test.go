package config

import (
	"strings"
	"testing"
)

func TestDashboardBaseDefaultsToTheListenAddress(t *testing.T) {
	tests := []struct {
		c    Config
		want string
	}{
		{Config{Listen: "127.0.0.1:8080"}, "http://127.0.0.1:8080"},
		{Config{Listen: ":8080", TLSCertFile: "c.pem"}, "https://localhost:8080"},
		{Config{Listen: "[::1]:8443"}, "http://[::1]:8443"},
		{Config{Listen: ":1", ExternalURL: "https://pg.example.com/broker/"}, "https://pg.example.com/broker"},
	}
	for _, tt := range tests {
		got, err := tt.c.DashboardBase()
		if err != nil || got != tt.want {
			t.Errorf("%+v: %q, %v; want %q", tt.c, got, err, tt.want)
		}
	}
}

func TestDashboardBaseRefusesABadExternalURL(t *testing.T) {
	for _, bad := range []string{"pg.example.com", "ftp://pg.example.com", "https://", "https://h/?a=1", "https://h/#x", "https://u:p@h/", "javascript:alert(1)"} {
		_, err := Config{Listen: ":8080", ExternalURL: bad}.DashboardBase()
		if err == nil || !strings.Contains(err.Error(), "PGBROKER_EXTERNAL_URL") {
			t.Errorf("%q: %v, want an error naming PGBROKER_EXTERNAL_URL", bad, err)
		}
	}
}
