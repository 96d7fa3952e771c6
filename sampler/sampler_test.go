package sampler

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/pgbroker/pgbroker/naming"
	"github.com/pgbroker/pgbroker/store"
)

func someInstances(n int) []store.Instance {
	out := make([]store.Instance, n)
	for i := range out {
		id := fmt.Sprintf("inst-%04d", i)
		out[i] = store.Instance{ID: id, ShortID: naming.ShortID(id)}
	}
	return out
}

func newSampler(t testing.TB, src *fakeSource, series Series, cfg Config) *Sampler {
	t.Helper()
	s, err := New(src, src, series, cfg, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// TestEightDaysOfSamplingStayWithinEachTiersBound samples two instances
// every 15s for 8 days: each tier holds at most its range (plus the 5
// minutes between prunes) and at least its range, reaches back over it,
// and the coarser points are the average of CPU and the maximum of memory
// of the samples they cover.
func TestEightDaysOfSamplingStayWithinEachTiersBound(t *testing.T) {
	src := &fakeSource{insts: someInstances(2), dbReads: map[string]int{}}
	series := newFakeSeries()
	s := newSampler(t, src, series, Config{Interval: 15 * time.Second, DatabaseInterval: 5 * time.Minute})
	start := time.Date(2026, 3, 1, 0, 0, 7, 0, time.UTC)
	end := start.Add(8 * 24 * time.Hour)
	ctx := context.Background()
	for now, k := start, 0; now.Before(end); now, k = now.Add(15*time.Second), k+1 {
		src.cpu = float64(k % 20) // 0..19 within each 5-minute bucket
		if err := s.Round(ctx, now); err != nil {
			t.Fatal(err)
		}
	}
	last := end.Add(-15 * time.Second)
	for _, tr := range s.Tiers() {
		pts := series.series("inst-0001", tr.Step)
		lo, hi := tr.Points()-1, tr.Points()+int(5*time.Minute/tr.Step)+1
		if len(pts) < lo || len(pts) > hi {
			t.Errorf("tier %s holds %d points, want %d to %d", tr.Range, len(pts), lo, hi)
			continue
		}
		if oldest := pts[0].At; oldest.After(last.Add(-tr.Keep + tr.Step)) {
			t.Errorf("tier %s starts at %s, want its whole range %s before %s", tr.Range, oldest, tr.Keep, last)
		}
	}
	five := series.series("inst-0000", 5*time.Minute)
	p := five[len(five)-1]
	if p.CPUPercent != 9.5 || p.MemoryBytes != 19000 || p.Connections != 3 || p.DiskSizeBytes != 20 {
		t.Errorf("a 5-minute point %+v: want CPU 9.5 (average of 0..19), memory 19000 (maximum), 3 connections, disk 20", p)
	}
	thirty := series.series("inst-0000", 30*time.Minute)
	if p := thirty[len(thirty)-1]; p.CPUPercent != 9.5 || p.MemoryBytes != 19000 {
		t.Errorf("a 30-minute point %+v: want CPU 9.5 and memory 19000", p)
	}
}

// TestDatabaseReadsSpreadOverTheRounds: with the database read every 20
// rounds, 200 instances are read 10 (or 20 while the first reads fill in)
// per round at most, every one within the first 20 rounds, and each once
// per 20 rounds after.
func TestDatabaseReadsSpreadOverTheRounds(t *testing.T) {
	src := &fakeSource{insts: someInstances(200), dbReads: map[string]int{}}
	s := newSampler(t, src, newFakeSeries(), Config{Interval: 15 * time.Second, DatabaseInterval: 5 * time.Minute})
	now := time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)
	total, worst := 0, 0
	for r := range 60 {
		before := total
		if err := s.Round(context.Background(), now.Add(time.Duration(r)*15*time.Second)); err != nil {
			t.Fatal(err)
		}
		total = 0
		for _, n := range src.dbReads {
			total += n
		}
		worst = max(worst, total-before)
		if r == 19 && len(src.dbReads) != 200 {
			t.Fatalf("after 20 rounds %d of 200 instances were read", len(src.dbReads))
		}
	}
	if worst > 20 {
		t.Errorf("a round read %d databases, want 20 at most", worst)
	}
	for id, n := range src.dbReads {
		if n < 3 || n > 4 {
			t.Errorf("%s read %d times in 60 rounds, want 3 (4 when first read out of turn)", id, n)
		}
	}
	if snap := s.Latest()["inst-0007"]; snap.Database.Connections != 3 || len(snap.Nodes) != 1 {
		t.Errorf("latest snapshot %+v lacks the figures read", snap)
	}
	src.insts = src.insts[1:]
	if err := s.Round(context.Background(), now.Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	if _, ok := s.Latest()["inst-0000"]; ok || len(s.database) != 199 {
		t.Errorf("a deprovisioned instance is still kept (%d database figures)", len(s.database))
	}
}

func TestAnIntervalThatDoesNotNestIsRefused(t *testing.T) {
	src := &fakeSource{dbReads: map[string]int{}}
	if _, err := New(src, src, newFakeSeries(), Config{Interval: 7 * time.Second}, nil); err == nil {
		t.Fatal("a 7s interval was accepted")
	}
}

// TestABrokerStartingLaterRollsUpWhatTheFormerLeftUnfinished: a sampler
// stops at 49:45, before the bucket 45:00-50:00 is rolled up; another
// starts 20 minutes later on the same series and rolls it up in its first
// round (and the earlier buckets stay as they were).
func TestABrokerStartingLaterRollsUpWhatTheFormerLeftUnfinished(t *testing.T) {
	src := &fakeSource{insts: someInstances(1), dbReads: map[string]int{}}
	series := newFakeSeries()
	cfg := Config{Interval: 15 * time.Second, DatabaseInterval: time.Minute}
	start := time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC)
	first := newSampler(t, src, series, cfg)
	for now := start; now.Before(start.Add(50 * time.Minute)); now = now.Add(15 * time.Second) {
		src.cpu = 4
		if err := first.Round(context.Background(), now); err != nil {
			t.Fatal(err)
		}
	}
	if n := len(series.series("inst-0000", 5*time.Minute)); n != 9 {
		t.Fatalf("the first sampler made %d five-minute points, want 9 (10:00 to 10:40)", n)
	}
	second := newSampler(t, src, series, cfg)
	if err := second.Round(context.Background(), start.Add(70*time.Minute)); err != nil {
		t.Fatal(err)
	}
	five := series.series("inst-0000", 5*time.Minute)
	if len(five) != 10 || !five[9].At.Equal(start.Add(45*time.Minute)) || five[9].CPUPercent != 4 {
		t.Fatalf("after the second sampler's first round: %d five-minute points, last %+v; want 10, the last at 10:45 with CPU 4", len(five), five[len(five)-1])
	}
}
