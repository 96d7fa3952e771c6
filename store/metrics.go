package store

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
)

// Metrics are the figures of every instance over time, in tiers: each
// point is the aggregate of one step-long bucket (package stats, Tier).
type Metrics struct{ *db }

// Metrics are the instances' figures over time.
func (s *Store) Metrics() *Metrics { return &Metrics{s.db} }

// MetricPoint is one instance's figures over one bucket of a tier (on a
// cluster, its nodes combined as the sampler says).
type MetricPoint struct {
	InstanceID    string
	At            time.Time // start of the bucket
	CPUPercent    float64   // percent of one core; a coarser tier's is the average
	MemoryBytes   int64     // a coarser tier's is the maximum
	SwapBytes     int64     // a coarser tier's is the maximum
	Connections   float64   // client backends; a coarser tier's is the average
	DataSizeBytes int64     // pg_database_size; a coarser tier's is the maximum
	DiskSizeBytes int64     // data directory and WAL; a coarser tier's is the maximum
}

// AddPoints stores points in the tier of step. A point whose instance
// already has one at that bucket is dropped (another broker sampled it).
func (m *Metrics) AddPoints(ctx context.Context, step time.Duration, points []MetricPoint) error {
	n := len(points)
	ids, at := make([]string, n), make([]time.Time, n)
	cpu, conns := make([]float64, n), make([]float64, n)
	mem, swap, data, disk := make([]int64, n), make([]int64, n), make([]int64, n), make([]int64, n)
	for k, p := range points {
		ids[k], at[k], cpu[k], conns[k] = p.InstanceID, p.At, p.CPUPercent, p.Connections
		mem[k], swap[k], data[k], disk[k] = p.MemoryBytes, p.SwapBytes, p.DataSizeBytes, p.DiskSizeBytes
	}
	_, err := m.pool.Exec(ctx, `
		INSERT INTO instance_metrics (step_seconds, instance_id, at, cpu_percent, connections, memory_bytes, swap_bytes, data_size_bytes, disk_size_bytes)
		SELECT $1, * FROM unnest($2::text[], $3::timestamptz[], $4::float8[], $5::float8[], $6::bigint[], $7::bigint[], $8::bigint[], $9::bigint[])
		ON CONFLICT DO NOTHING`, seconds(step), ids, at, cpu, conns, mem, swap, data, disk)
	if err != nil {
		return fmt.Errorf("store %d metric points: %w", n, err)
	}
	return nil
}

// Rollup aggregates the points of tier from whose bucket starts lie in
// [since, until) into the buckets of tier to (until should be a bucket
// start of to, so only complete buckets are made): the average of CPU and
// connections, the maximum of the others. A bucket already made is kept,
// so rolling up again changes nothing. It returns the points made.
func (m *Metrics) Rollup(ctx context.Context, from, to time.Duration, since, until time.Time) (int64, error) {
	tag, err := m.pool.Exec(ctx, `
		INSERT INTO instance_metrics (step_seconds, instance_id, at, cpu_percent, connections, memory_bytes, swap_bytes, data_size_bytes, disk_size_bytes)
		SELECT $2::int, instance_id, date_bin(make_interval(secs => $2::int), at, timestamptz '1970-01-01 00:00:00+00') AS bucket,
			avg(cpu_percent), avg(connections), max(memory_bytes), max(swap_bytes), max(data_size_bytes), max(disk_size_bytes)
		FROM instance_metrics
		WHERE step_seconds = $1 AND at >= $3 AND at < $4
		GROUP BY instance_id, bucket
		ON CONFLICT DO NOTHING`, seconds(from), seconds(to), since, until)
	if err != nil {
		return 0, fmt.Errorf("roll up %s metric points into %s points: %w", from, to, err)
	}
	return tag.RowsAffected(), nil
}

// Prune deletes the points of the tier of step older than before and
// returns how many went.
func (m *Metrics) Prune(ctx context.Context, step time.Duration, before time.Time) (int64, error) {
	tag, err := m.pool.Exec(ctx, `DELETE FROM instance_metrics WHERE step_seconds = $1 AND at < $2`, seconds(step), before)
	if err != nil {
		return 0, fmt.Errorf("delete %s metric points before %s: %w", step, before.Format(time.RFC3339), err)
	}
	return tag.RowsAffected(), nil
}

// Series returns the points of instanceID in the tier of step from since
// on, oldest first.
func (m *Metrics) Series(ctx context.Context, instanceID string, step time.Duration, since time.Time) ([]MetricPoint, error) {
	rows, err := m.pool.Query(ctx, `
		SELECT instance_id, at, cpu_percent, connections, memory_bytes, swap_bytes, data_size_bytes, disk_size_bytes
		FROM instance_metrics WHERE instance_id = $1 AND step_seconds = $2 AND at >= $3 ORDER BY at`,
		instanceID, seconds(step), since)
	if err != nil {
		return nil, fmt.Errorf("read the metric points of %s: %w", instanceID, err)
	}
	points, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (MetricPoint, error) {
		var p MetricPoint
		var cpu, conns float32
		err := r.Scan(&p.InstanceID, &p.At, &cpu, &conns, &p.MemoryBytes, &p.SwapBytes, &p.DataSizeBytes, &p.DiskSizeBytes)
		p.CPUPercent, p.Connections = float64(cpu), float64(conns)
		return p, err
	})
	if err != nil {
		return nil, fmt.Errorf("read the metric points of %s: %w", instanceID, err)
	}
	return points, nil
}

func seconds(d time.Duration) int { return int(d / time.Second) }
