// Package sampler samples the figures of every live instance at a fixed
// interval and keeps them over time in the state database, downsampled in
// tiers (stats.Tiers): each round stores one point per instance in the
// finest tier; once per 5-minute bucket the finished buckets are rolled up
// into the coarser tiers and points past their tier's range are deleted.
// It keeps the last snapshot of each instance in memory for /metrics.
//
// Container figures come from one Nomad allocation list and one stats
// request per allocation, every round. Database figures need a TLS and
// SCRAM login per instance, the costly part, so each instance's are read
// once per DatabaseInterval, spread evenly over the rounds, and reused in
// between.
package sampler

import (
	"context"
	"log/slog"
	"maps"
	"sync"
	"time"

	"github.com/pgbroker/pgbroker/stats"
	"github.com/pgbroker/pgbroker/store"
)

// Source reads the figures (instances.Service).
type Source interface {
	// AllContainers returns the container figures of every running node
	// allocation of insts, by node job id; with an error, those it could read.
	AllContainers(ctx context.Context, insts []store.Instance) (map[string][]stats.Node, error)
	DatabaseStats(ctx context.Context, inst store.Instance) (stats.Database, error)
}

// Instances lists the instances to sample (*store.Instances).
type Instances interface {
	LiveInstances(ctx context.Context) ([]store.Instance, error)
}

// Series keeps the points over time (*store.Metrics).
type Series interface {
	AddPoints(ctx context.Context, step time.Duration, points []store.MetricPoint) error
	Rollup(ctx context.Context, from, to time.Duration, since, until time.Time) (int64, error)
	Prune(ctx context.Context, step time.Duration, before time.Time) (int64, error)
}

// Config sets the pace.
type Config struct {
	Interval         time.Duration // PGBROKER_METRICS_INTERVAL: one round, one fine point per instance
	DatabaseInterval time.Duration // PGBROKER_METRICS_DATABASE_INTERVAL: how often each instance's database figures are read
	DatabaseReaders  int           // database reads in flight at once; 0: 4
	ReadTimeout      time.Duration // limit of one database read; 0: 5s
}

// Sampler samples and keeps the figures. Round must not run concurrently
// with itself (Run calls it from one goroutine); Latest may be called at
// any time.
type Sampler struct {
	src    Source
	insts  Instances
	series Series
	cfg    Config
	tiers  []stats.Tier
	log    *slog.Logger

	round      uint64
	maintained time.Time                 // 5-minute bucket of the last roll-up; zero before the first
	database   map[string]stats.Database // instance id → last database figures read
	dbRead     map[string]bool           // instance id → database figures read at least once

	mu     sync.Mutex
	latest map[string]stats.Snapshot // instance id → last snapshot
}

// New returns a Sampler. Errors: an Interval stats.Tiers refuses.
func New(src Source, insts Instances, series Series, cfg Config, log *slog.Logger) (*Sampler, error) {
	tiers, err := stats.Tiers(cfg.Interval)
	if err != nil {
		return nil, err
	}
	if cfg.DatabaseReaders <= 0 {
		cfg.DatabaseReaders = 4
	}
	if cfg.ReadTimeout <= 0 {
		cfg.ReadTimeout = 5 * time.Second
	}
	if cfg.DatabaseInterval < cfg.Interval {
		cfg.DatabaseInterval = cfg.Interval
	}
	return &Sampler{src: src, insts: insts, series: series, cfg: cfg, tiers: tiers, log: log,
		database: map[string]stats.Database{}, dbRead: map[string]bool{}, latest: map[string]stats.Snapshot{}}, nil
}

// Tiers are the tiers the sampler keeps.
func (s *Sampler) Tiers() []stats.Tier { return s.tiers }

// Run samples every Interval until ctx ends; a round longer than the
// interval delays the next one instead of overlapping it.
func (s *Sampler) Run(ctx context.Context) {
	t := time.NewTicker(s.cfg.Interval)
	defer t.Stop()
	for {
		if err := s.Round(ctx, time.Now()); err != nil && ctx.Err() == nil {
			s.log.Warn("metrics sampling round", slog.String("error", err.Error()))
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// Latest returns the last snapshot of every live instance, by instance id.
func (s *Sampler) Latest() map[string]stats.Snapshot {
	s.mu.Lock()
	defer s.mu.Unlock()
	return maps.Clone(s.latest)
}

// due reports whether the instance at index i of the live instances
// (sorted by id) has its database figures read in this round: each once
// every DatabaseInterval/Interval rounds, at the offset its index picks, so
// the reads spread evenly. An instance added or removed shifts the others
// by one round at most.
func (s *Sampler) due(i int) bool {
	k := uint64(s.cfg.DatabaseInterval / s.cfg.Interval)
	return uint64(i)%k == s.round%k
}
