package metrics

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/pgbroker/pgbroker/stats"
	"github.com/pgbroker/pgbroker/store"
)

type fakeHealth struct {
	list []store.BackupHealth
	err  error
}

func (f fakeHealth) LastSuccessfulBackups(context.Context) ([]store.BackupHealth, error) {
	return f.list, f.err
}

func scrape(t *testing.T, src BackupHealth) string {
	t.Helper()
	rec := httptest.NewRecorder()
	Handler(src, slog.New(slog.NewTextHandler(io.Discard, nil))).ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	return rec.Body.String()
}

func TestLastSuccessTimestampPerInstance(t *testing.T) {
	at := time.Unix(1_790_000_000, 500_000_000)
	body := scrape(t, fakeHealth{list: []store.BackupHealth{{InstanceID: "db-1", LastSuccess: at}}})
	want := `pgbroker_backup_last_success_timestamp_seconds{instance_id="db-1"} 1.7900000005e+09`
	if !strings.Contains(body, want) {
		t.Errorf("metrics lack %s:\n%s", want, body)
	}
}

func TestStateDatabaseDownLeavesTheOtherMetrics(t *testing.T) {
	body := scrape(t, fakeHealth{err: errors.New("connection refused")})
	if strings.Contains(body, "pgbroker_backup_last_success_timestamp_seconds{") || !strings.Contains(body, "go_goroutines") {
		t.Errorf("with the state database down, want the Go metrics and no backup metric:\n%.500s", body)
	}
}

type fakeSnapshots map[string]stats.Snapshot

func (f fakeSnapshots) Latest() map[string]stats.Snapshot { return f }

func TestInstanceGaugesPerNode(t *testing.T) {
	snaps := fakeSnapshots{
		"db-1": {Nodes: []stats.Node{{Name: "node-0", CPUPercent: 2.5, MemoryBytes: 1 << 20, MemoryMaxBytes: 2 << 20}},
			Database: stats.Database{Connections: 4, MaxConnections: 100, DataSizeBytes: 7, DiskSizeBytes: 9}},
		"db-2": {Nodes: []stats.Node{{Name: "node-1", MemoryBytes: 5}}}, // database not read yet
	}
	rec := httptest.NewRecorder()
	Handler(fakeHealth{}, slog.New(slog.NewTextHandler(io.Discard, nil)), InstanceCollector(snaps)).
		ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	body := rec.Body.String()
	for _, want := range []string{
		`pgbroker_instance_cpu_percent{instance_id="db-1",node="node-0"} 2.5`,
		`pgbroker_instance_memory_bytes{instance_id="db-1",node="node-0"} 1.048576e+06`,
		`pgbroker_instance_memory_max_bytes{instance_id="db-1",node="node-0"} 2.097152e+06`,
		`pgbroker_instance_connections{instance_id="db-1"} 4`,
		`pgbroker_instance_disk_size_bytes{instance_id="db-1"} 9`,
		`pgbroker_instance_memory_bytes{instance_id="db-2",node="node-1"} 5`,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("metrics lack %s", want)
		}
	}
	if strings.Contains(body, `pgbroker_instance_connections{instance_id="db-2"}`) {
		t.Error("an instance whose database was not read yet exports connections")
	}
}
