package scheduler

import (
	"fmt"
	"testing"
	"time"
)

func TestDueFiresOnceTheRunIsPastAndWithinTheWindow(t *testing.T) {
	d, _ := ParseDaily("01:00", "UTC")
	created := time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)
	e := []Entry{{InstanceID: "i", Daily: d, Since: created}}
	cases := []struct {
		now  time.Time
		want string
	}{
		{time.Date(2026, 1, 2, 0, 59, 0, 0, time.UTC), "[]"},                                  // before the first run
		{time.Date(2026, 1, 2, 1, 0, 0, 0, time.UTC), "[{i 2026-01-02 01:00:00 +0000 UTC}]"},  // at it
		{time.Date(2026, 1, 2, 2, 30, 0, 0, time.UTC), "[{i 2026-01-02 01:00:00 +0000 UTC}]"}, // within the window
		{time.Date(2026, 1, 2, 3, 30, 0, 0, time.UTC), "[]"},                                  // missed for longer
		{time.Date(2026, 1, 1, 13, 0, 0, 0, time.UTC), "[]"},                                  // today's run was before creation
	}
	for _, c := range cases {
		if got := fmt.Sprint(Due(e, c.now, 2*time.Hour)); got != c.want {
			t.Errorf("Due at %v = %s, want %s", c.now, got, c.want)
		}
	}
}

// BenchmarkPlanNextRuns10000 plans the next run of 10,000 instances with
// schedules spread over every minute of the day and ten time zones, parsing
// included. Target: < 100 ms per plan.
func BenchmarkPlanNextRuns10000(b *testing.B) {
	zones := []string{"Europe/Paris", "UTC", "America/New_York", "Asia/Tokyo", "Europe/London",
		"Australia/Sydney", "America/Sao_Paulo", "Africa/Nairobi", "Asia/Kolkata", "Pacific/Auckland"}
	type param struct{ t, z string }
	params := make([]param, 10000)
	for i := range params {
		m := (i * 7) % 1440
		params[i] = param{fmt.Sprintf("%02d:%02d", m/60, m%60), zones[i%len(zones)]}
	}
	now := time.Date(2026, 6, 1, 12, 0, 0, 0, time.UTC)
	b.ResetTimer()
	for b.Loop() {
		entries := make([]Entry, len(params))
		for i, p := range params {
			d, err := Cached(p.t, p.z)
			if err != nil {
				b.Fatal(err)
			}
			entries[i] = Entry{InstanceID: p.t, Daily: d}
		}
		_ = NextRuns(entries, now)
	}
}
