package worker

import (
	"context"
	"errors"
	"testing"
	"time"
)

// waitBatch tells a job still running when the attempt's (or the limit's)
// time came from an error of the wait itself.
func TestWaitBatchTellsAJobStillRunningFromAnError(t *testing.T) {
	blocks := func(ctx context.Context) error { <-ctx.Done(); return ctx.Err() }
	boom := errors.New("nomad: 500")
	for _, tc := range []struct {
		name    string
		attempt time.Duration // the attempt's timeout (0: none)
		limit   time.Duration // from now
		wait    func(context.Context) error
		running bool
		err     error
		within  time.Duration // waitBatch returns no sooner (a deadline never fires early)
	}{
		{"the attempt's time is up first", time.Second, time.Hour, blocks, true, nil, 700 * time.Millisecond},
		{"the limit comes first", time.Hour, 300 * time.Millisecond, blocks, true, nil, 250 * time.Millisecond},
		{"no attempt deadline: the limit", 0, 300 * time.Millisecond, blocks, true, nil, 250 * time.Millisecond},
		{"the wait fails", time.Second, time.Hour, func(context.Context) error { return boom }, false, boom, 0},
		{"the job ends", time.Second, time.Hour, func(context.Context) error { return nil }, false, nil, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := context.Background()
			if tc.attempt > 0 {
				var cancel context.CancelFunc
				ctx, cancel = context.WithTimeout(ctx, tc.attempt)
				defer cancel()
			}
			start := time.Now()
			running, err := waitBatch(ctx, start.Add(tc.limit), tc.wait)
			took := time.Since(start)
			if running != tc.running || !errors.Is(err, tc.err) || (err == nil) != (tc.err == nil) {
				t.Fatalf("waitBatch = %v, %v; want %v, %v", running, err, tc.running, tc.err)
			}
			if took < tc.within {
				t.Fatalf("returned after %v, before %v", took, tc.within)
			}
		})
	}
	// The attempt itself ended (shutdown): not "still running", the error.
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if running, err := waitBatch(ctx, time.Now().Add(time.Hour), blocks); running || !errors.Is(err, context.Canceled) {
		t.Fatalf("canceled attempt: waitBatch = %v, %v; want false, context.Canceled", running, err)
	}
}
