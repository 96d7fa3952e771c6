package scheduler

import (
	"sync"
	"time"
)

// Entry is one instance's daily dump schedule.
type Entry struct {
	InstanceID string
	Daily      Daily
	Since      time.Time // runs before this (the instance's creation) do not count
}

// Run is one scheduled dump of an instance.
type Run struct {
	InstanceID string
	At         time.Time
}

// Due returns the runs that came due at or before now and no longer ago
// than window, one per entry at most (its latest), for entries whose run is
// after Since. A run missed for longer than window (the broker was down) is
// skipped: the next day's runs as usual.
func Due(entries []Entry, now time.Time, window time.Duration) []Run {
	var out []Run
	for _, e := range entries {
		at := e.Daily.Latest(now)
		if at.IsZero() || now.Sub(at) > window || at.Before(e.Since) {
			continue
		}
		out = append(out, Run{InstanceID: e.InstanceID, At: at})
	}
	return out
}

// NextRuns returns each entry's next run strictly after now, in the order of entries.
func NextRuns(entries []Entry, now time.Time) []Run {
	out := make([]Run, len(entries))
	for i, e := range entries {
		out[i] = Run{InstanceID: e.InstanceID, At: e.Daily.Next(now)}
	}
	return out
}

// parsed caches ParseDaily by "HH:MM zone": loading a time zone reads the
// zoneinfo database, and most instances share a few schedules.
var parsed sync.Map // string → Daily

// Cached is ParseDaily, remembering schedules already parsed.
func Cached(hhmmText, zone string) (Daily, error) {
	key := hhmmText + " " + zone
	if d, ok := parsed.Load(key); ok {
		return d.(Daily), nil
	}
	d, err := ParseDaily(hhmmText, zone)
	if err != nil {
		return Daily{}, err
	}
	parsed.Store(key, d)
	return d, nil
}
