package worker

import (
	"context"
	"time"
)

// BatchStopper stops a batch job (a dump, restore or base backup:
// backup.DumpJobID, RestoreJobID, BaseBackupJobID) and returns once its
// allocations have stopped (backup.Backups.StopBatch). A failure is
// recorded only after it returned nil, so no outcome is ever written while
// the job still runs (issue 12, "long work has honest outcomes").
type BatchStopper interface {
	StopBatch(ctx context.Context, jobID string) error
}

// stillRunningSnooze is how soon an attempt whose batch job was still
// running when the attempt's time was up runs again (river.JobSnooze: it
// does not count as an attempt).
const stillRunningSnooze = time.Second

// stopTimeout bounds stopping a batch job once its time is up.
const stopTimeout = time.Minute

// waitBatch runs wait (the start of a batch job and the wait for its end)
// until the attempt's deadline, less a margin to hand over, or until
// limit, whichever comes first. stillRunning is true when that time came
// first: the job may still be running and nothing is to be recorded. Other
// errors are wait's.
func waitBatch(ctx context.Context, limit time.Time, wait func(context.Context) error) (stillRunning bool, err error) {
	until := limit
	if d, ok := ctx.Deadline(); ok {
		margin := min(5*time.Second, time.Until(d)/5)
		until = minTime(until, d.Add(-margin))
	}
	wctx, cancel := context.WithDeadline(ctx, until)
	defer cancel()
	err = wait(wctx)
	if err != nil && wctx.Err() != nil && ctx.Err() == nil {
		return true, nil
	}
	return false, err
}

// stopBatch stops job jobID with its own time (the attempt's may be up).
func stopBatch(ctx context.Context, s BatchStopper, jobID string) error {
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), stopTimeout)
	defer cancel()
	return s.StopBatch(sctx, jobID)
}

func minTime(a, b time.Time) time.Time {
	if a.Before(b) {
		return a
	}
	return b
}
