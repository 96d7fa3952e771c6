package scheduler

import (
	"sort"
	"time"

	"github.com/pgbroker/pgbroker/catalog"
)

// Record is what retention needs of one backup.
type Record struct {
	ID     string
	Manual bool      // asked for through the API, not made by the daily schedule
	State  State     // where the backup stands
	At     time.Time // when the dump was made (its finish, or its creation while unfinished)
}

// State of a backup, as retention sees it.
type State int

// States.
const (
	Unfinished State = iota // pending or running: never deleted
	Succeeded
	Failed
)

// FailedKept is how long a failed backup's record stays visible.
const FailedKept = 7 * 24 * time.Hour

// Keep returns the ids of the backups an instance keeps at now under policy
// (DESIGN.md "Backups", from the seeds: last 7 daily; 4 weekly on Starter;
// 8 weekly and 12 monthly on Business; the newest 10 or 50 manual). Days,
// weeks (ISO, Monday first) and months are calendar periods in loc.
//
//   - daily: the newest successful scheduled dump of each of the
//     policy.DailyKept most recent days (today included);
//   - weekly: the newest of each of the policy.WeeklyKept most recent weeks;
//   - monthly: the newest of each of the policy.MonthlyKept most recent months;
//   - manual: the newest policy.ManualKept successful manual dumps; once the
//     instance is gone (deprovisioned) manual dumps age like scheduled ones,
//     so retention runs its course and ends with nothing left;
//   - unfinished backups are always kept; failed ones for FailedKept.
//
// Keep is pure: the same records, policy and time give the same set.
func Keep(policy catalog.BackupPolicy, records []Record, now time.Time, loc *time.Location, gone bool) map[string]bool {
	keep := map[string]bool{}
	var calendar, manual []Record
	for _, r := range records {
		switch {
		case r.State == Unfinished:
			keep[r.ID] = true
		case r.State == Failed:
			if now.Sub(r.At) < FailedKept {
				keep[r.ID] = true
			}
		case r.Manual && !gone:
			manual = append(manual, r)
		default:
			calendar = append(calendar, r)
		}
	}
	newestFirst := func(rs []Record) {
		sort.Slice(rs, func(i, j int) bool {
			if !rs[i].At.Equal(rs[j].At) {
				return rs[i].At.After(rs[j].At)
			}
			return rs[i].ID > rs[j].ID
		})
	}
	newestFirst(manual)
	for i := 0; i < len(manual) && i < policy.ManualKept; i++ {
		keep[manual[i].ID] = true
	}
	newestFirst(calendar)
	local := now.In(loc)
	today := time.Date(local.Year(), local.Month(), local.Day(), 0, 0, 0, 0, loc)
	periods := []struct {
		kept  int
		start func(time.Time) time.Time // the start of the period holding t (t in loc)
		back  func(time.Time, int) time.Time
	}{
		{policy.DailyKept, startOfDay, func(t time.Time, n int) time.Time { return t.AddDate(0, 0, -n) }},
		{policy.WeeklyKept, startOfWeek, func(t time.Time, n int) time.Time { return t.AddDate(0, 0, -7*n) }},
		{policy.MonthlyKept, startOfMonth, func(t time.Time, n int) time.Time { return t.AddDate(0, -n, 0) }},
	}
	for _, p := range periods {
		if p.kept <= 0 {
			continue
		}
		// The oldest period kept starts here; every later period counts.
		oldest := p.start(p.back(p.start(today), p.kept-1))
		seen := map[time.Time]bool{}
		for _, r := range calendar {
			if r.At.After(now) {
				continue
			}
			start := p.start(r.At.In(loc))
			if start.Before(oldest) || seen[start] {
				continue
			}
			seen[start] = true
			keep[r.ID] = true
		}
	}
	return keep
}

func startOfDay(t time.Time) time.Time {
	return time.Date(t.Year(), t.Month(), t.Day(), 0, 0, 0, 0, t.Location())
}

func startOfWeek(t time.Time) time.Time {
	d := startOfDay(t)
	offset := (int(d.Weekday()) + 6) % 7 // Monday 0 … Sunday 6
	return d.AddDate(0, 0, -offset)
}

func startOfMonth(t time.Time) time.Time {
	return time.Date(t.Year(), t.Month(), 1, 0, 0, 0, 0, t.Location())
}
