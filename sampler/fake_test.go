package sampler

import (
	"context"
	"sort"
	"sync"
	"time"

	"github.com/pgbroker/pgbroker/naming"
	"github.com/pgbroker/pgbroker/stats"
	"github.com/pgbroker/pgbroker/store"
)

// fakeSource gives each instance one node whose CPU is the round's number
// and whose memory climbs, and counts database reads.
type fakeSource struct {
	mu      sync.Mutex
	insts   []store.Instance
	cpu     float64
	dbReads map[string]int
}

func (f *fakeSource) LiveInstances(context.Context) ([]store.Instance, error) { return f.insts, nil }

func (f *fakeSource) AllContainers(context.Context, []store.Instance) (map[string][]stats.Node, error) {
	out := make(map[string][]stats.Node, len(f.insts))
	for _, in := range f.insts {
		out[naming.NodesJobID(in.ShortID)] = []stats.Node{{Name: "node-0", AllocationID: in.ID, CPUPercent: f.cpu, MemoryBytes: uint64(f.cpu) * 1000}}
	}
	return out, nil
}

func (f *fakeSource) DatabaseStats(_ context.Context, in store.Instance) (stats.Database, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.dbReads[in.ID]++
	return stats.Database{Connections: 3, MaxConnections: 100, DataSizeBytes: 10, DiskSizeBytes: 20}, nil
}

// fakeSeries keeps points in memory and rolls up and prunes as
// store.Metrics does in SQL.
type fakeSeries struct {
	tiers map[time.Duration]map[key]store.MetricPoint
}

type key struct {
	id string
	at int64
}

func newFakeSeries() *fakeSeries {
	return &fakeSeries{tiers: map[time.Duration]map[key]store.MetricPoint{}}
}

func (f *fakeSeries) tier(step time.Duration) map[key]store.MetricPoint {
	if f.tiers[step] == nil {
		f.tiers[step] = map[key]store.MetricPoint{}
	}
	return f.tiers[step]
}

func (f *fakeSeries) AddPoints(_ context.Context, step time.Duration, points []store.MetricPoint) error {
	t := f.tier(step)
	for _, p := range points {
		k := key{p.InstanceID, p.At.Unix()}
		if _, ok := t[k]; !ok {
			t[k] = p
		}
	}
	return nil
}

func (f *fakeSeries) Rollup(_ context.Context, from, to time.Duration, since, until time.Time) (int64, error) {
	type agg struct {
		p store.MetricPoint
		n int
	}
	buckets := map[key]*agg{}
	for _, p := range f.tier(from) {
		if p.At.Before(since) || !p.At.Before(until) {
			continue
		}
		k := key{p.InstanceID, p.At.Truncate(to).Unix()}
		a := buckets[k]
		if a == nil {
			a = &agg{p: store.MetricPoint{InstanceID: p.InstanceID, At: p.At.Truncate(to)}}
			buckets[k] = a
		}
		a.n++
		a.p.CPUPercent += p.CPUPercent
		a.p.Connections += p.Connections
		a.p.MemoryBytes = max(a.p.MemoryBytes, p.MemoryBytes)
		a.p.SwapBytes = max(a.p.SwapBytes, p.SwapBytes)
		a.p.DataSizeBytes = max(a.p.DataSizeBytes, p.DataSizeBytes)
		a.p.DiskSizeBytes = max(a.p.DiskSizeBytes, p.DiskSizeBytes)
	}
	var made int64
	t := f.tier(to)
	for k, a := range buckets {
		if _, ok := t[k]; ok {
			continue
		}
		a.p.CPUPercent /= float64(a.n)
		a.p.Connections /= float64(a.n)
		t[k] = a.p
		made++
	}
	return made, nil
}

func (f *fakeSeries) Prune(_ context.Context, step time.Duration, before time.Time) (int64, error) {
	var gone int64
	for k, p := range f.tier(step) {
		if p.At.Before(before) {
			delete(f.tiers[step], k)
			gone++
		}
	}
	return gone, nil
}

// series returns one instance's points of a tier, oldest first.
func (f *fakeSeries) series(id string, step time.Duration) []store.MetricPoint {
	var out []store.MetricPoint
	for _, p := range f.tier(step) {
		if p.InstanceID == id {
			out = append(out, p)
		}
	}
	sort.Slice(out, func(a, b int) bool { return out[a].At.Before(out[b].At) })
	return out
}
