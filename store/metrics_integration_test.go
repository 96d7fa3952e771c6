package store_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/pgbroker/pgbroker/store"
	"github.com/pgbroker/pgbroker/store/storetest"
)

// TestMetricsRollUpIntoCoarserBucketsAndPruneTheirRange: samples every 15s
// over 10 minutes roll up into two 5-minute points (average of CPU, maximum
// of memory), rolling up again changes nothing, a second broker's sample of
// a bucket already stored is dropped, and pruning removes only points past
// the cut.
func TestMetricsRollUpIntoCoarserBucketsAndPruneTheirRange(t *testing.T) {
	st := storetest.New(t)
	m, ctx := st.Metrics(), context.Background()
	start := time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC)
	var fine []store.MetricPoint
	for k := range 40 {
		fine = append(fine, store.MetricPoint{InstanceID: "i-1", At: start.Add(time.Duration(k) * 15 * time.Second),
			CPUPercent: float64(k), MemoryBytes: int64(1000 + k), Connections: 2, DataSizeBytes: 10, DiskSizeBytes: 20})
	}
	if err := m.AddPoints(ctx, 15*time.Second, fine); err != nil {
		t.Fatal(err)
	}
	dup := fine[0]
	dup.MemoryBytes = 1 << 40
	if err := m.AddPoints(ctx, 15*time.Second, []store.MetricPoint{dup}); err != nil {
		t.Fatal(err)
	}
	for range 2 {
		if _, err := m.Rollup(ctx, 15*time.Second, 5*time.Minute, start, start.Add(10*time.Minute)); err != nil {
			t.Fatal(err)
		}
	}
	coarse, err := m.Series(ctx, "i-1", 5*time.Minute, start)
	if err != nil {
		t.Fatal(err)
	}
	if len(coarse) != 2 {
		t.Fatalf("%d five-minute points, want 2: %+v", len(coarse), coarse)
	}
	// Bucket 1 holds samples 0..19: CPU average 9.5, memory maximum 1019.
	if c := coarse[0]; !c.At.Equal(start) || c.CPUPercent != 9.5 || c.MemoryBytes != 1019 || c.Connections != 2 || c.DiskSizeBytes != 20 {
		t.Errorf("first five-minute point %+v, want at %s, cpu 9.5, memory 1019, connections 2", c, start)
	}
	if c := coarse[1]; c.CPUPercent != 29.5 || c.MemoryBytes != 1039 {
		t.Errorf("second five-minute point %+v, want cpu 29.5, memory 1039", c)
	}
	gone, err := m.Prune(ctx, 15*time.Second, start.Add(5*time.Minute))
	if err != nil || gone != 20 {
		t.Fatalf("prune: %d rows gone (%v), want the 20 before the cut", gone, err)
	}
	left, err := m.Series(ctx, "i-1", 15*time.Second, start)
	if err != nil || len(left) != 20 || !left[0].At.Equal(start.Add(5*time.Minute)) {
		t.Fatalf("after prune: %d points from %v (%v)", len(left), left, err)
	}
}

// TestMetricsStoragePerInstance fills every tier of 50 instances to its
// bound (240 + 288 + 336 points at a 15s interval) and logs the bytes per
// instance the table and its indexes take (the README's figure); it fails
// past 256 KiB per instance.
func TestMetricsStoragePerInstance(t *testing.T) {
	st, url := storetest.NewWithURL(t)
	m, ctx := st.Metrics(), context.Background()
	const instances = 50
	now := time.Now().UTC().Truncate(30 * time.Minute)
	tiers := []struct {
		step   time.Duration
		points int
	}{{15 * time.Second, 240}, {5 * time.Minute, 288}, {30 * time.Minute, 336}}
	rows := 0
	for _, tr := range tiers {
		var batch []store.MetricPoint
		for i := range instances {
			for k := range tr.points {
				batch = append(batch, store.MetricPoint{InstanceID: fmt.Sprintf("%08d-aaaa-bbbb-cccc-dddddddddddd", i),
					At: now.Add(-time.Duration(k) * tr.step), CPUPercent: 1.5, MemoryBytes: 1 << 28, Connections: 3,
					DataSizeBytes: 1 << 23, DiskSizeBytes: 1 << 25})
			}
		}
		if err := m.AddPoints(ctx, tr.step, batch); err != nil {
			t.Fatal(err)
		}
		rows += tr.points
	}
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	var size int64
	if _, err := conn.Exec(ctx, "VACUUM instance_metrics"); err != nil {
		t.Fatal(err)
	}
	if err := conn.QueryRow(ctx, "SELECT pg_total_relation_size('instance_metrics')").Scan(&size); err != nil {
		t.Fatal(err)
	}
	per := size / instances
	t.Logf("instance_metrics: %d rows and %d bytes per instance (table and primary key, after VACUUM)", rows, per)
	if per > 256<<10 {
		t.Errorf("%d bytes per instance, over the 256 KiB bound", per)
	}
}
