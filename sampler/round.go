package sampler

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/pgbroker/pgbroker/naming"
	"github.com/pgbroker/pgbroker/stats"
	"github.com/pgbroker/pgbroker/store"
)

// Round samples every live instance at now, stores one point each in the
// finest tier, and, once per 5-minute bucket, rolls up and prunes the
// tiers. An instance whose figures cannot be read keeps its former ones
// (its database's) or is left out (its containers); the errors are counted
// in one log line, not returned. Errors: listing the instances, or the
// state database.
func (s *Sampler) Round(ctx context.Context, now time.Time) error {
	defer func() { s.round++ }()
	insts, err := s.insts.LiveInstances(ctx)
	if err != nil {
		return err
	}
	containers, cerr := s.src.AllContainers(ctx, insts)
	dbErrs := s.readDatabases(ctx, insts)
	if cerr != nil || dbErrs > 0 {
		s.log.Debug("metrics sampling round left figures out", slog.Any("containers_error", cerr), slog.Int("database_errors", dbErrs))
	}
	points := s.snapshot(insts, containers, now)
	if len(points) > 0 {
		if err := s.series.AddPoints(ctx, s.tiers[0].Step, points); err != nil {
			return err
		}
	}
	return s.maintain(ctx, now)
}

// readDatabases reads the database figures of the instances due this
// round, and of those never read (as many again at most, so a broker that
// starts fills in within DatabaseInterval without a burst), DatabaseReaders
// at a time. It returns the number of failed reads.
func (s *Sampler) readDatabases(ctx context.Context, insts []store.Instance) int {
	k := int(s.cfg.DatabaseInterval / s.cfg.Interval)
	extra := (len(insts) + k - 1) / k
	var todo []store.Instance
	for i, in := range insts {
		switch {
		case s.due(i):
			todo = append(todo, in)
		case !s.dbRead[in.ID] && extra > 0:
			todo = append(todo, in)
			extra--
		}
	}
	got := make([]stats.Database, len(todo))
	errs := make([]error, len(todo))
	var wg sync.WaitGroup
	sem := make(chan struct{}, s.cfg.DatabaseReaders)
	for i, in := range todo {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer func() { <-sem; wg.Done() }()
			rctx, cancel := context.WithTimeout(ctx, s.cfg.ReadTimeout)
			defer cancel()
			got[i], errs[i] = s.src.DatabaseStats(rctx, in)
		}()
	}
	wg.Wait()
	failed := 0
	for i, in := range todo {
		if errs[i] != nil {
			failed++
			continue
		}
		s.database[in.ID], s.dbRead[in.ID] = got[i], true
	}
	return failed
}

// snapshot makes each instance's snapshot and fine point at now, and
// forgets what it kept of instances no longer live.
func (s *Sampler) snapshot(insts []store.Instance, containers map[string][]stats.Node, now time.Time) []store.MetricPoint {
	live := make(map[string]stats.Snapshot, len(insts))
	points := make([]store.MetricPoint, 0, len(insts))
	at := s.tiers[0].Bucket(now)
	for _, in := range insts {
		snap := stats.Snapshot{TakenAt: now.UTC(), Nodes: containers[naming.NodesJobID(in.ShortID)], Database: s.database[in.ID]}
		stats.Fill(snap.Nodes, snap.Database.Node) // the last reading, for nodes Nomad does not measure
		live[in.ID] = snap
		if len(snap.Nodes) == 0 && !s.dbRead[in.ID] {
			continue // nothing known yet
		}
		points = append(points, Combine(in.ID, at, snap))
	}
	for id := range s.dbRead {
		if _, ok := live[id]; !ok {
			delete(s.dbRead, id)
			delete(s.database, id)
		}
	}
	s.mu.Lock()
	s.latest = live
	s.mu.Unlock()
	return points
}

// Combine is the point of one instance's snapshot: the CPU of its nodes
// summed (percent of one core, like Nomad's per node), the memory and swap
// of its largest node, the database figures as read through the gateway
// (the primary's).
func Combine(instanceID string, at time.Time, snap stats.Snapshot) store.MetricPoint {
	p := store.MetricPoint{InstanceID: instanceID, At: at, Connections: float64(snap.Database.Connections),
		DataSizeBytes: snap.Database.DataSizeBytes, DiskSizeBytes: snap.Database.DiskSizeBytes}
	for _, n := range snap.Nodes {
		p.CPUPercent += n.CPUPercent
		p.MemoryBytes = max(p.MemoryBytes, int64(n.MemoryBytes))
		p.SwapBytes = max(p.SwapBytes, int64(n.SwapBytes))
	}
	return p
}

// maintain rolls up the finished buckets into each coarser tier and prunes
// every tier, once per bucket of the second tier (5 minutes). The first
// time after start it rolls up all the finer tier still holds, to catch up
// on buckets finished while no broker sampled; after that the last two
// buckets (rolling up is idempotent).
func (s *Sampler) maintain(ctx context.Context, now time.Time) error {
	bucket := s.tiers[1].Bucket(now)
	if bucket.Equal(s.maintained) {
		return nil
	}
	var errs []error
	for i := 1; i < len(s.tiers); i++ {
		from, to := s.tiers[i-1], s.tiers[i]
		until := to.Bucket(now)
		since := until.Add(-2 * to.Step)
		if s.maintained.IsZero() {
			since = now.Add(-from.Keep).Truncate(to.Step)
		}
		if _, err := s.series.Rollup(ctx, from.Step, to.Step, since, until); err != nil {
			errs = append(errs, err)
		}
	}
	for _, t := range s.tiers {
		if _, err := s.series.Prune(ctx, t.Step, now.Add(-t.Keep)); err != nil {
			errs = append(errs, err)
		}
	}
	if len(errs) > 0 {
		return fmt.Errorf("keep the metric tiers: %w", errors.Join(errs...))
	}
	s.maintained = bucket
	return nil
}
