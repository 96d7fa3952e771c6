package scheduler

import (
	"fmt"
	"math/rand"
	"sort"
	"testing"
	"time"

	"github.com/pgbroker/pgbroker/catalog"
)

var (
	starter  = catalog.BackupPolicy{Daily: true, DailyKept: 7, WeeklyKept: 4, MonthlyKept: 0, ManualKept: 10, PITRDays: 7}
	business = catalog.BackupPolicy{Daily: true, DailyKept: 7, WeeklyKept: 8, MonthlyKept: 12, ManualKept: 50, PITRDays: 7}
)

// simulation drives 400 days of one instance: a daily dump at 01:00 Paris
// (one in 23 fails), 0 to 3 manual dumps a day, and a retention sweep after
// every dump that deletes what Keep does not keep.
type simulation struct {
	policy catalog.BackupPolicy
	loc    *time.Location
	stored map[string]Record
	all    []Record // every backup ever made
	gone   bool
}

func newSimulation(t *testing.T, policy catalog.BackupPolicy) *simulation {
	loc, err := time.LoadLocation("Europe/Paris")
	if err != nil {
		t.Fatal(err)
	}
	return &simulation{policy: policy, loc: loc, stored: map[string]Record{}}
}

func (s *simulation) add(r Record) {
	s.stored[r.ID] = r
	s.all = append(s.all, r)
}

func (s *simulation) sweep(now time.Time) {
	var rs []Record
	for _, r := range s.stored {
		rs = append(rs, r)
	}
	keep := Keep(s.policy, rs, now, s.loc, s.gone)
	for id := range s.stored {
		if !keep[id] {
			delete(s.stored, id)
		}
	}
}

func (s *simulation) run(start time.Time, days int, rng *rand.Rand) time.Time {
	day := start
	for d := 0; d < days; d++ {
		dump := time.Date(day.Year(), day.Month(), day.Day(), 1, 0, 0, 0, s.loc)
		state := Succeeded
		if d%23 == 11 {
			state = Failed
		}
		s.add(Record{ID: fmt.Sprintf("daily-%s", dump.Format("2006-01-02")), State: state, At: dump})
		s.sweep(dump.Add(time.Minute))
		for m := 0; m < rng.Intn(4); m++ {
			at := dump.Add(time.Duration(2+rng.Intn(20)) * time.Hour)
			s.add(Record{ID: fmt.Sprintf("manual-%s-%d", dump.Format("2006-01-02"), m), Manual: true, State: Succeeded, At: at})
			s.sweep(at.Add(time.Minute))
		}
		day = day.AddDate(0, 0, 1)
	}
	return day
}

// expected computes the policy's set from the seeds' wording, independently
// of Keep: the successful dump of each of the last 7 days; the newest
// successful dump of each of the last N calendar weeks and months; the
// newest M manual dumps; failed dumps younger than a week.
func (s *simulation) expected(now time.Time) []string {
	local := now.In(s.loc)
	today := time.Date(local.Year(), local.Month(), local.Day(), 0, 0, 0, 0, s.loc)
	newestIn := map[string]Record{}
	set := map[string]bool{}
	var manual []Record
	for _, r := range s.all {
		if r.At.After(now) {
			continue
		}
		if r.State == Failed {
			if now.Sub(r.At) < 7*24*time.Hour {
				set[r.ID] = true
			}
			continue
		}
		if r.Manual && !s.gone {
			manual = append(manual, r)
			continue
		}
		at := r.At.In(s.loc)
		daysAgo := int(today.Sub(time.Date(at.Year(), at.Month(), at.Day(), 0, 0, 0, 0, s.loc)).Hours()+12) / 24
		if daysAgo < s.policy.DailyKept {
			key := "d" + at.Format("2006-01-02")
			if cur, ok := newestIn[key]; !ok || r.At.After(cur.At) {
				newestIn[key] = r
			}
		}
		y, w := at.ISOWeek()
		ty, tw := today.ISOWeek()
		if weeksBetween(y, w, ty, tw) < s.policy.WeeklyKept {
			key := fmt.Sprintf("w%d-%d", y, w)
			if cur, ok := newestIn[key]; !ok || r.At.After(cur.At) {
				newestIn[key] = r
			}
		}
		monthsAgo := (today.Year()-at.Year())*12 + int(today.Month()-at.Month())
		if monthsAgo < s.policy.MonthlyKept {
			key := "m" + at.Format("2006-01")
			if cur, ok := newestIn[key]; !ok || r.At.After(cur.At) {
				newestIn[key] = r
			}
		}
	}
	for _, r := range newestIn {
		set[r.ID] = true
	}
	sort.Slice(manual, func(i, j int) bool { return manual[i].At.After(manual[j].At) })
	for i := 0; i < len(manual) && i < s.policy.ManualKept; i++ {
		set[manual[i].ID] = true
	}
	return sortedKeys(set)
}

// weeksBetween counts ISO weeks from (y1, w1) to (y2, w2) by their Mondays.
func weeksBetween(y1, w1, y2, w2 int) int {
	monday := func(y, w int) time.Time {
		jan4 := time.Date(y, 1, 4, 0, 0, 0, 0, time.UTC)
		return jan4.AddDate(0, 0, -((int(jan4.Weekday())+6)%7)+7*(w-1))
	}
	return int(monday(y2, w2).Sub(monday(y1, w1)).Hours()+12) / (24 * 7)
}

func sortedKeys(m map[string]bool) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

func (s *simulation) storedIDs() []string {
	m := map[string]bool{}
	for id := range s.stored {
		m[id] = true
	}
	return sortedKeys(m)
}

func count(ids []string, prefix string) int {
	n := 0
	for _, id := range ids {
		if len(id) >= len(prefix) && id[:len(prefix)] == prefix {
			n++
		}
	}
	return n
}

func TestRetentionSimulation400DaysKeepsExactlyThePolicySet(t *testing.T) {
	for _, c := range []struct {
		name   string
		policy catalog.BackupPolicy
		// successful scheduled dumps kept at the end: 7 days, plus the
		// weeks and months not already among them
		minDaily, maxDaily int
	}{
		{"starter", starter, 7 + 3 - 1, 7 + 3},
		{"business", business, 7 + 7 + 11 - 3, 7 + 7 + 11},
	} {
		t.Run(c.name, func(t *testing.T) {
			sim := newSimulation(t, c.policy)
			rng := rand.New(rand.NewSource(4))
			start := time.Date(2025, 1, 1, 0, 0, 0, 0, sim.loc)
			end := sim.run(start, 400, rng)
			now := end.Add(-time.Hour) // 23:00 on the last day
			sim.sweep(now)
			got, want := sim.storedIDs(), sim.expected(now)
			if fmt.Sprint(got) != fmt.Sprint(want) {
				t.Fatalf("after 400 days kept\n%v\nwant\n%v", got, want)
			}
			if n := count(got, "manual-"); n != c.policy.ManualKept {
				t.Errorf("%d manual dumps kept, want %d", n, c.policy.ManualKept)
			}
			if n := count(got, "daily-"); n < c.minDaily || n > c.maxDaily {
				t.Errorf("%d scheduled dumps kept, want %d to %d: %v", n, c.minDaily, c.maxDaily, got)
			}
			// Sweeping every day gives what one sweep over everything would.
			if oneShot := sortedKeys(Keep(c.policy, sim.all, now, sim.loc, false)); fmt.Sprint(oneShot) != fmt.Sprint(got) {
				t.Errorf("daily sweeps kept %v, one sweep keeps %v", got, oneShot)
			}
		})
	}
}

func TestRetentionAfterDeprovisionRunsItsCourseToNothing(t *testing.T) {
	for _, c := range []struct {
		name   string
		policy catalog.BackupPolicy
		empty  int // days after the last dump when nothing is left
	}{
		{"starter", starter, 4 * 7},
		{"business", business, 366},
	} {
		t.Run(c.name, func(t *testing.T) {
			sim := newSimulation(t, c.policy)
			rng := rand.New(rand.NewSource(7))
			start := time.Date(2025, 3, 1, 0, 0, 0, 0, sim.loc)
			end := sim.run(start, 400, rng)
			sim.gone = true
			// From now on only what is stored can be kept.
			sim.all = nil
			for _, r := range sim.stored {
				sim.all = append(sim.all, r)
			}
			prev := len(sim.stored)
			for d := 0; d <= c.empty; d++ {
				now := end.AddDate(0, 0, d).Add(12 * time.Hour)
				sim.sweep(now)
				if got, want := sim.storedIDs(), sim.expected(now); fmt.Sprint(got) != fmt.Sprint(want) {
					t.Fatalf("day %d after deprovisioning kept %v, want %v", d, got, want)
				}
				if len(sim.stored) > prev {
					t.Fatalf("day %d: %d backups, more than the day before (%d)", d, len(sim.stored), prev)
				}
				prev = len(sim.stored)
			}
			if len(sim.stored) != 0 {
				t.Errorf("%d days after deprovisioning %d backups are left: %v", c.empty, len(sim.stored), sim.storedIDs())
			}
		})
	}
}

func TestRetentionNeverDeletesUnfinishedBackups(t *testing.T) {
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	rs := []Record{{ID: "old-running", State: Unfinished, At: now.AddDate(-2, 0, 0)}, {ID: "old-manual", Manual: true, State: Succeeded, At: now.AddDate(-2, 0, 0)}}
	keep := Keep(catalog.BackupPolicy{}, rs, now, time.UTC, true)
	if !keep["old-running"] || keep["old-manual"] {
		t.Errorf("Keep = %v, want only old-running", keep)
	}
}
