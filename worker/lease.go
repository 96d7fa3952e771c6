package worker

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/riverqueue/river"
	"github.com/riverqueue/river/rivertype"
)

// Takeover of a crashed broker's attempts (issue 12, hole 7). Every broker
// writes a heartbeat (store.Beat) every TakeoverAfter/4 and, as often, hands
// every running job whose broker has not beaten for TakeoverAfter back to
// the queue (store.TakeOverAbandoned), so another broker, or the same one
// restarted, continues it within about TakeoverAfter of the crash instead of
// River's RescueAfter. A broker that cannot write its own heartbeat for
// 0.6 x TakeoverAfter cancels the attempts it runs (the fence), so it has
// stopped working on them before anyone takes them over. Every step of an
// operation is idempotent, so an attempt run again is harmless.

// heartbeats is what the lease needs of the state database.
type heartbeats interface {
	Beat(ctx context.Context, clientID string) error
	TakeOverAbandoned(ctx context.Context, stale time.Duration) ([]int64, error)
}

// lease keeps one broker's heartbeat and fences its attempts.
type lease struct {
	clientID string
	db       heartbeats
	after    time.Duration // TakeoverAfter
	log      *slog.Logger
	now      func() time.Time

	mu     sync.Mutex
	lastOK time.Time     // last heartbeat the state database took
	lost   chan struct{} // closed while the lease is lost
}

func newLease(clientID string, db heartbeats, after time.Duration, log *slog.Logger) *lease {
	return &lease{clientID: clientID, db: db, after: after, log: log, now: time.Now, lost: make(chan struct{})}
}

// fenceAfter is how long without a heartbeat before this broker stops its
// own attempts: well before others take them over (after).
func (l *lease) fenceAfter() time.Duration { return l.after * 6 / 10 }

// run beats and takes over abandoned jobs every after/4 until ctx ends.
func (l *lease) run(ctx context.Context) {
	tick := time.NewTicker(l.after / 4)
	defer tick.Stop()
	for {
		l.beat(ctx)
		if ids, err := l.db.TakeOverAbandoned(ctx, l.after); err != nil {
			l.log.Warn("take over abandoned jobs", slog.String("error", err.Error()))
		} else if len(ids) > 0 {
			l.log.Info("took over the attempts of a broker that stopped beating", slog.Any("jobs", ids))
		}
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}

// beat writes the heartbeat and updates whether the lease holds.
func (l *lease) beat(ctx context.Context) {
	err := l.db.Beat(ctx, l.clientID)
	l.mu.Lock()
	defer l.mu.Unlock()
	now := l.now()
	if err == nil {
		if l.lastOK.IsZero() || now.Sub(l.lastOK) > l.fenceAfter() {
			l.lost = make(chan struct{}) // (re)gained
		}
		l.lastOK = now
		return
	}
	l.log.Warn("heartbeat", slog.String("error", err.Error()))
	if !l.lastOK.IsZero() && now.Sub(l.lastOK) > l.fenceAfter() && !closed(l.lost) {
		l.log.Error("the state database has not taken this broker's heartbeat: cancelling its attempts so that another broker can take them over",
			slog.Duration("since_last", now.Sub(l.lastOK)))
		close(l.lost)
	}
}

func closed(ch chan struct{}) bool {
	select {
	case <-ch:
		return true
	default:
		return false
	}
}

// errLeaseLost ends an attempt this broker no longer holds a lease for.
var errLeaseLost = errors.New("this broker's heartbeat is late: the attempt is left to another broker")

// guard returns ctx, cancelled when the lease is lost; an error when it is
// lost already.
func (l *lease) guard(ctx context.Context) (context.Context, context.CancelFunc, error) {
	l.mu.Lock()
	lost := l.lost
	l.mu.Unlock()
	if closed(lost) {
		return ctx, func() {}, errLeaseLost
	}
	ctx, cancel := context.WithCancelCause(ctx)
	go func() {
		select {
		case <-lost:
			cancel(errLeaseLost)
		case <-ctx.Done():
		}
	}()
	return ctx, func() { cancel(nil) }, nil
}

// fence is the River worker middleware that runs every attempt under the
// lease (guard).
type fence struct {
	river.MiddlewareDefaults
	lease *lease
}

func (f *fence) Work(ctx context.Context, job *rivertype.JobRow, doInner func(context.Context) error) error {
	ctx, cancel, err := f.lease.guard(ctx)
	if err != nil {
		return fmt.Errorf("job %d: %w", job.ID, err)
	}
	defer cancel()
	return doInner(ctx)
}

var _ rivertype.WorkerMiddleware = (*fence)(nil)
