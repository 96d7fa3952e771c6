package mgmtapi

import (
	"context"
	"net/http"
	"time"

	"github.com/pgbroker/pgbroker/stats"
	"github.com/pgbroker/pgbroker/store"
)

// Stats reads an instance's current figures (instances.Service).
type Stats interface {
	Stats(ctx context.Context, inst store.Instance) (stats.Snapshot, error)
}

// MetricSeries reads an instance's figures over time (*store.Metrics).
type MetricSeries interface {
	Series(ctx context.Context, instanceID string, step time.Duration, since time.Time) ([]store.MetricPoint, error)
}

// statsRoutes serve the figures the dashboard shows: current and over time.
type statsRoutes struct{ *API }

func (a statsRoutes) routes() []route {
	return []route{
		{http.MethodGet, "/stats", a.current},
		{http.MethodGet, "/metrics", a.overTime},
	}
}

type nodeJSON struct {
	Name             string  `json:"name"`
	AllocationID     string  `json:"allocation_id"`
	CPUPercent       float64 `json:"cpu_percent"`
	MemoryBytes      uint64  `json:"memory_bytes"`
	MemoryMaxBytes   uint64  `json:"memory_max_bytes"`
	MemoryLimitBytes uint64  `json:"memory_limit_bytes"`
	SwapBytes        uint64  `json:"swap_bytes"`
	SwapMaxBytes     uint64  `json:"swap_max_bytes"`
	SwapLimitBytes   uint64  `json:"swap_limit_bytes"`
}

type databaseJSON struct {
	Connections    int   `json:"connections"`
	MaxConnections int   `json:"max_connections"`
	DataSizeBytes  int64 `json:"data_size_bytes"`
	DiskSizeBytes  int64 `json:"disk_size_bytes"`
}

type statsJSON struct {
	TakenAt  string       `json:"taken_at"`
	Nodes    []nodeJSON   `json:"nodes"`
	Database databaseJSON `json:"database"`
}

// GET /api/instances/{instance_id}/stats: 200 with the current figures,
// read now from Nomad and the instance's database.
func (a statsRoutes) current(w http.ResponseWriter, r *http.Request) {
	inst, err := a.live(r)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	snap, err := a.Stats.Stats(r.Context(), inst)
	if err != nil {
		a.fail(w, r, dependency("read the instance's figures", err))
		return
	}
	d := snap.Database
	out := statsJSON{TakenAt: snap.TakenAt.UTC().Format(time.RFC3339), Nodes: make([]nodeJSON, 0, len(snap.Nodes)),
		Database: databaseJSON{Connections: d.Connections, MaxConnections: d.MaxConnections, DataSizeBytes: d.DataSizeBytes, DiskSizeBytes: d.DiskSizeBytes}}
	for _, n := range snap.Nodes {
		out.Nodes = append(out.Nodes, nodeJSON{Name: n.Name, AllocationID: n.AllocationID, CPUPercent: n.CPUPercent,
			MemoryBytes: n.MemoryBytes, MemoryMaxBytes: n.MemoryMaxBytes, MemoryLimitBytes: n.MemoryLimitBytes,
			SwapBytes: n.SwapBytes, SwapMaxBytes: n.SwapMaxBytes, SwapLimitBytes: n.SwapLimitBytes})
	}
	writeJSON(w, http.StatusOK, out)
}

type pointJSON struct {
	At            string  `json:"at"`
	CPUPercent    float64 `json:"cpu_percent"`
	MemoryBytes   int64   `json:"memory_bytes"`
	SwapBytes     int64   `json:"swap_bytes"`
	Connections   float64 `json:"connections"`
	DataSizeBytes int64   `json:"data_size_bytes"`
	DiskSizeBytes int64   `json:"disk_size_bytes"`
}

// GET /api/instances/{instance_id}/metrics?range=1h|24h|7d: 200 with the
// points of the tier answering range, oldest first; 400 naming range for
// any other value.
func (a statsRoutes) overTime(w http.ResponseWriter, r *http.Request) {
	rng := r.URL.Query().Get("range")
	if rng == "" {
		rng = "1h"
	}
	tier, ok := stats.TierOf(a.Tiers, rng)
	if !ok {
		a.fail(w, r, failure(http.StatusBadRequest, "Range", "range must be 1h, 24h or 7d, not %q", rng))
		return
	}
	inst, err := a.stored(r)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	points, err := a.Metrics.Series(r.Context(), inst.ID, tier.Step, time.Now().Add(-tier.Keep))
	if err != nil {
		a.fail(w, r, stateDB("read the instance's metrics", err))
		return
	}
	out := make([]pointJSON, len(points))
	for i, p := range points {
		out[i] = pointJSON{At: p.At.UTC().Format(time.RFC3339), CPUPercent: p.CPUPercent, MemoryBytes: p.MemoryBytes,
			SwapBytes: p.SwapBytes, Connections: p.Connections, DataSizeBytes: p.DataSizeBytes, DiskSizeBytes: p.DiskSizeBytes}
	}
	writeJSON(w, http.StatusOK, map[string]any{"range": rng, "step_seconds": int(tier.Step / time.Second), "points": out})
}

// live returns the instance of the path once provisioned (404, 409); unlike
// instance, another operation in progress does not stop a read.
func (a statsRoutes) live(r *http.Request) (store.Instance, error) {
	inst, op, err := a.provisioned(r)
	if err == nil && op.Kind == store.KindProvision && op.State == store.InProgress {
		return store.Instance{}, failure(http.StatusConflict, "InstanceNotReady", "instance %s is still being provisioned: %s", inst.ID, op.Description)
	}
	return inst, err
}
