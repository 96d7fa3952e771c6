package worker

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"testing"
	"time"
)

type fakeBeats struct{ fail bool }

func (f *fakeBeats) Beat(context.Context, string) error {
	if f.fail {
		return errors.New("state database unreachable")
	}
	return nil
}
func (f *fakeBeats) TakeOverAbandoned(context.Context, time.Duration) ([]int64, error) {
	return nil, nil
}

// A broker whose heartbeat the state database has not taken for longer
// than the fence stops its running attempt, refuses new ones, and works
// again once a heartbeat is taken.
func TestTheFenceCancelsAttemptsOfABrokerThatCannotBeat(t *testing.T) {
	db := &fakeBeats{}
	clock := time.Date(2026, 12, 7, 3, 0, 0, 0, time.UTC)
	l := newLease("c1", db, 20*time.Second, slog.New(slog.NewTextHandler(io.Discard, nil)))
	l.now = func() time.Time { return clock }
	l.beat(context.Background())

	running, cancel, err := l.guard(context.Background())
	if err != nil {
		t.Fatalf("guard with a fresh heartbeat: %v", err)
	}
	defer cancel()
	db.fail = true
	clock = clock.Add(10 * time.Second) // under the fence (12 s)
	l.beat(context.Background())
	if running.Err() != nil {
		t.Fatal("attempt cancelled 10 s after the last heartbeat, before the fence")
	}
	clock = clock.Add(5 * time.Second) // 15 s: past the fence, before a takeover (20 s)
	l.beat(context.Background())
	select {
	case <-running.Done():
	case <-time.After(time.Second):
		t.Fatal("the running attempt went on past the fence")
	}
	if !errors.Is(context.Cause(running), errLeaseLost) {
		t.Fatalf("cancelled for %v", context.Cause(running))
	}
	if _, _, err := l.guard(context.Background()); !errors.Is(err, errLeaseLost) {
		t.Fatalf("a new attempt while fenced: %v", err)
	}
	db.fail = false
	clock = clock.Add(5 * time.Second)
	l.beat(context.Background())
	again, cancel2, err := l.guard(context.Background())
	if err != nil || again.Err() != nil {
		t.Fatalf("after a heartbeat is taken again: %v, %v", err, again.Err())
	}
	cancel2()
}
