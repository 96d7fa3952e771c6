package backup

import (
	"context"
	"log/slog"
	"slices"
	"testing"
	"time"

	"github.com/hashicorp/nomad/api"
)

func TestLimitsGrowWithThePlansDisk(t *testing.T) {
	for _, tc := range []struct {
		diskMiB int
		want    time.Duration
	}{
		{0, 15 * time.Minute},
		{1024, 19 * time.Minute},
		{1025, 23 * time.Minute}, // a partial GiB counts whole
		{10240, 55 * time.Minute},
		{163840, 10*time.Hour + 55*time.Minute},
	} {
		if got := DefaultLimits.For(tc.diskMiB); got != tc.want {
			t.Errorf("DefaultLimits.For(%d MiB) = %v, want %v", tc.diskMiB, got, tc.want)
		}
	}
}

func TestStopBatchPurgesTheJobAndItsSecret(t *testing.T) {
	n := newFakeNomad()
	n.allocs = []*api.AllocationListStub{{ID: "a-run", ClientStatus: api.AllocClientStatusRunning}, {ID: "a-done", ClientStatus: api.AllocClientStatusComplete}}
	b := New(n, Config{}, Hooks{}, slog.New(slog.DiscardHandler))
	jobID := DumpJobID("abc", "b1")
	n.vars[jobSecretPath(jobID)] = map[string]string{"admin_password": "x"}
	if err := b.StopBatch(context.Background(), jobID); err != nil {
		t.Fatal(err)
	}
	if !slices.Contains(n.purged, jobID) {
		t.Errorf("purged %v, want %s", n.purged, jobID)
	}
	if !slices.Equal(n.waitedStopped, []string{"a-run"}) {
		t.Errorf("waited for allocations %v to stop, want the running one", n.waitedStopped)
	}
	if _, ok := n.vars[jobSecretPath(jobID)]; ok {
		t.Error("the job's Variable is left")
	}
}
