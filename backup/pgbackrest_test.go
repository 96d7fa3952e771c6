package backup

import (
	"testing"
	"time"
)

func TestChooseSetTakesTheLatestBaseBackupSurelyEndedByTheTarget(t *testing.T) {
	at := func(s string) time.Time {
		v, err := time.Parse(time.RFC3339Nano, s)
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	backups := []BaseBackupInfo{
		{Label: "20261116-020000F", Stop: at("2026-11-16T02:00:09Z")},
		{Label: "20261123-020000F", Stop: at("2026-11-23T02:00:09Z")},
	}
	for _, c := range []struct {
		target string
		want   string
	}{
		// In the second the only candidate ended: pgBackRest would refuse it; the oldest is used.
		{"2026-11-16T02:00:09.759Z", "20261116-020000F"},
		{"2026-11-20T00:00:00Z", "20261116-020000F"},
		// In the second the second backup ended: it may have ended after the target.
		{"2026-11-23T02:00:09.999Z", "20261116-020000F"},
		{"2026-11-23T02:00:10Z", "20261123-020000F"},
		{"2026-11-30T00:00:00Z", "20261123-020000F"},
	} {
		if got := chooseSet(backups, at(c.target)); got != c.want {
			t.Errorf("target %s: set %s, want %s", c.target, got, c.want)
		}
	}
}
