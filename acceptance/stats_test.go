package acceptance

import (
	"context"
	"net/http"
	"regexp"
	"strconv"
	"testing"
	"time"

	"github.com/google/uuid"
)

type apiStats struct {
	TakenAt string `json:"taken_at"`
	Nodes   []struct {
		Name             string  `json:"name"`
		AllocationID     string  `json:"allocation_id"`
		CPUPercent       float64 `json:"cpu_percent"`
		MemoryBytes      uint64  `json:"memory_bytes"`
		MemoryMaxBytes   uint64  `json:"memory_max_bytes"`
		MemoryLimitBytes uint64  `json:"memory_limit_bytes"`
		SwapBytes        uint64  `json:"swap_bytes"`
		SwapLimitBytes   uint64  `json:"swap_limit_bytes"`
	} `json:"nodes"`
	Database struct {
		Connections    int   `json:"connections"`
		MaxConnections int   `json:"max_connections"`
		DataSizeBytes  int64 `json:"data_size_bytes"`
		DiskSizeBytes  int64 `json:"disk_size_bytes"`
	} `json:"database"`
}

// TestOwnerSeesTheStatsOfTheirDatabaseNowAndOverTime: a Starter instance
// with an application connected shows its node's memory (under the plan's
// limit), its connections, data and on-disk sizes on GET /stats; after a few
// sampling rounds GET /metrics?range=1h has points, Prometheus's /metrics
// has the instance's gauges, and a bad range is a 400 naming range.
func TestOwnerSeesTheStatsOfTheirDatabaseNowAndOverTime(t *testing.T) {
	b := newBroker(t, "PGBROKER_METRICS_INTERVAL=1s", "PGBROKER_METRICS_DATABASE_INTERVAL=2s")
	c := b.client()
	plan := "postgresql-starter-512"
	id := provisionTemporary(t, c, plan)
	creds := bind(t, c, id, uuid.NewString(), plan, nil)
	app := connect(t, creds["DATABASE_URL"].(string))
	defer app.Close(context.Background())
	mustExec(t, app, "CREATE TABLE filler AS SELECT g, repeat('x', 200) AS pad FROM generate_series(1, 20000) g")

	var s apiStats
	if status, body := b.apiCall(t, http.MethodGet, "/api/instances/"+id+"/stats", "", &s); status != 200 {
		t.Fatalf("GET stats: %d %s", status, body)
	} else {
		t.Logf("GET /stats: %s", body)
	}
	if len(s.Nodes) != 1 {
		t.Fatalf("stats show %d nodes, want the Starter's one", len(s.Nodes))
	}
	n := s.Nodes[0]
	if n.Name != "node-0" || n.MemoryBytes == 0 || n.MemoryMaxBytes < n.MemoryBytes || n.MemoryLimitBytes < 512<<20 || n.MemoryBytes > n.MemoryLimitBytes {
		t.Errorf("node %+v: want node-0 with memory above 0, at most its max and its limit (512 MiB at least)", n)
	}
	d := s.Database
	if d.Connections < 1 || d.MaxConnections < d.Connections || d.DataSizeBytes < 4<<20 || d.DiskSizeBytes <= d.DataSizeBytes {
		t.Errorf("database %+v: want the app's connection, a data size over 4 MiB (the table) and a larger on-disk size (WAL)", d)
	}

	var m struct {
		Range       string `json:"range"`
		StepSeconds int    `json:"step_seconds"`
		Points      []struct {
			At          string  `json:"at"`
			MemoryBytes int64   `json:"memory_bytes"`
			Connections float64 `json:"connections"`
			DiskSize    int64   `json:"disk_size_bytes"`
		} `json:"points"`
	}
	deadline := time.Now().Add(30 * time.Second)
	for len(m.Points) < 3 || m.Points[len(m.Points)-1].DiskSize == 0 {
		if time.Now().After(deadline) {
			t.Fatalf("after 30s, metrics?range=1h has %d points: %+v", len(m.Points), m)
		}
		time.Sleep(time.Second)
		if status, body := b.apiCall(t, http.MethodGet, "/api/instances/"+id+"/metrics?range=1h", "", &m); status != 200 {
			t.Fatalf("GET metrics: %d %s", status, body)
		}
	}
	last := m.Points[len(m.Points)-1]
	if m.Range != "1h" || m.StepSeconds != 1 || last.MemoryBytes == 0 || last.Connections < 1 {
		t.Errorf("metrics %s step %d, last point %+v: want 1h, step 1, memory and the app's connection", m.Range, m.StepSeconds, last)
	}
	t.Logf("last of %d points (step %ds): %+v", len(m.Points), m.StepSeconds, last)
	if _, body := b.apiCall(t, http.MethodGet, "/api/instances/"+id+"/stats", "", nil); body != "" {
		t.Logf("GET /stats again: %s", body)
	}
	var bad struct{ Error, Description string }
	if status, _ := b.apiCall(t, http.MethodGet, "/api/instances/"+id+"/metrics?range=2h", "", &bad); status != 400 || bad.Error != "Range" {
		t.Errorf("range=2h: %d %+v, want 400 Range", status, bad)
	}

	_, prom := b.raw(http.MethodGet, "/metrics", "", nil)
	for _, name := range []string{"pgbroker_instance_memory_bytes", "pgbroker_instance_cpu_percent", "pgbroker_instance_connections", "pgbroker_instance_disk_size_bytes"} {
		re := regexp.MustCompile(name + `\{instance_id="` + id + `"[^}]*\} (\S+)`)
		got := re.FindStringSubmatch(prom)
		if got == nil {
			t.Errorf("/metrics has no %s for the instance", name)
			continue
		}
		if v, _ := strconv.ParseFloat(got[1], 64); v <= 0 && name != "pgbroker_instance_cpu_percent" {
			t.Errorf("%s = %s, want above 0", name, got[1])
		}
	}
}
