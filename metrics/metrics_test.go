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
