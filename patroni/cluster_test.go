package patroni

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"
)

// bounded returns a context that ends when the test would otherwise hang
// (a wait whose condition a bug keeps false).
func bounded(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// steps records progress reports.
type steps struct {
	mu  sync.Mutex
	all []string
}

func (s *steps) add(step string) { s.mu.Lock(); s.all = append(s.all, step); s.mu.Unlock() }
func (s *steps) String() string  { s.mu.Lock(); defer s.mu.Unlock(); return strings.Join(s.all, " | ") }

func TestWaitMembersReportsChangesAndReturnsOnceTheConditionHolds(t *testing.T) {
	f := newFakePatroni(t)
	members := twoNodes("")
	starting := members[1]
	starting.Role, starting.State, starting.LagBytes = "replica", "starting", nil
	f.set(members[0], starting)
	go func() {
		time.Sleep(50 * time.Millisecond)
		f.set(members...)
	}()
	var s steps
	got, err := f.client(f.password).WaitMembers(bounded(t), "cluster", Healthy(1), s.add)
	if err != nil {
		t.Fatal(err)
	}
	if DescribeMembers(got) != "node-0 leader; node-1 sync_standby streaming, lag 0 B" {
		t.Fatalf("returned %q", DescribeMembers(got))
	}
	want := "cluster: node-0 leader; node-1 replica starting | cluster: node-0 leader; node-1 sync_standby streaming, lag 0 B"
	if s.String() != want {
		t.Fatalf("progress %q, want each state once: %q", s.String(), want)
	}
}

func TestWaitMembersTimesOutNamingTheLastState(t *testing.T) {
	f := newFakePatroni(t, Member{Name: "node-0", Role: "replica", State: "running"})
	ctx, cancel := context.WithTimeout(bounded(t), 100*time.Millisecond)
	defer cancel()
	_, err := f.client(f.password).WaitMembers(ctx, "waiting for a leader", func(m []Member) bool { return Leader(m) != "" }, func(string) {})
	if !errors.Is(err, context.DeadlineExceeded) || !strings.Contains(err.Error(), "waiting for a leader") ||
		!strings.Contains(err.Error(), "last: node-0 replica running") {
		t.Fatalf("got %v", err)
	}
}

func TestWaitMembersTimesOutNamingTheLastReadError(t *testing.T) {
	f := newFakePatroni(t, twoNodes("")...)
	ctx, cancel := context.WithTimeout(bounded(t), 100*time.Millisecond)
	defer cancel()
	_, err := f.client("wrong").WaitMembers(ctx, "cluster", Healthy(1), func(string) {})
	if !errors.Is(err, context.DeadlineExceeded) || !strings.Contains(err.Error(), "401") {
		t.Fatalf("got %v, want the deadline and the last read's 401", err)
	}
}

func TestSwitchoverToTheSynchronousStandby(t *testing.T) {
	f := newFakePatroni(t)
	f.set(twoNodes(f.srv.URL)...)
	prepared := 0
	var s steps
	err := f.client(f.password).SwitchoverTo(bounded(t), "node-1", func(context.Context) error { prepared++; return nil }, s.add)
	if err != nil {
		t.Fatal(err)
	}
	if prepared != 1 {
		t.Fatalf("prepare ran %d times, want once", prepared)
	}
	if !strings.Contains(s.String(), "switching over from node-0 to node-1") || !strings.HasSuffix(s.String(), "node-0 sync_standby streaming; node-1 leader") {
		t.Fatalf("progress %q", s.String())
	}
}

func TestSwitchoverToTheLeaderDoesNothing(t *testing.T) {
	f := newFakePatroni(t)
	f.set(twoNodes(f.srv.URL)...)
	err := f.client(f.password).SwitchoverTo(bounded(t), "node-0", func(context.Context) error { return errors.New("prepare must not run") }, func(string) {})
	if err != nil {
		t.Fatal(err)
	}
	if f.count("POST /switchover") > 0 {
		t.Fatal("switched over to the member that already leads")
	}
}

func TestSwitchoverWaitsUntilTheCandidateIsTheSynchronousStandby(t *testing.T) {
	f := newFakePatroni(t)
	members := twoNodes(f.srv.URL)
	members[1].Role = "replica" // Patroni has not made it synchronous yet
	f.set(members...)
	go func() {
		time.Sleep(50 * time.Millisecond)
		f.set(twoNodes(f.srv.URL)...)
	}()
	if err := f.client(f.password).SwitchoverTo(bounded(t), "node-1", func(context.Context) error { return nil }, func(string) {}); err != nil {
		t.Fatalf("a switchover sent before the candidate was synchronous: %v", err)
	}
}

func TestSwitchoverWithoutALeaderWaitsAndTimesOut(t *testing.T) {
	f := newFakePatroni(t)
	members := twoNodes(f.srv.URL)
	members[0].State = "stopped" // the leader's PostgreSQL is down: Patroni is electing
	f.set(members...)
	ctx, cancel := context.WithTimeout(bounded(t), 150*time.Millisecond)
	defer cancel()
	err := f.client(f.password).SwitchoverTo(ctx, "node-1", func(context.Context) error { return nil }, func(string) {})
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("got %v, want to wait for a leader until the deadline", err)
	}
	if f.count("POST /switchover") > 0 {
		t.Fatal("asked for a switchover while no leader runs")
	}
}

func TestSwitchoverFailsWhenPatroniRefuses(t *testing.T) {
	f := newFakePatroni(t)
	f.set(twoNodes(f.srv.URL)...)
	f.onSwitchover = func(w http.ResponseWriter, _, _ string) {
		http.Error(w, "Switchover failed", http.StatusServiceUnavailable)
	}
	err := f.client(f.password).SwitchoverTo(bounded(t), "node-1", func(context.Context) error { return nil }, func(string) {})
	if err == nil || !strings.Contains(err.Error(), "503") || !strings.Contains(err.Error(), "Switchover failed") {
		t.Fatalf("got %v", err)
	}
}

func TestSwitchoverStopsWhenPrepareFails(t *testing.T) {
	f := newFakePatroni(t)
	f.set(twoNodes(f.srv.URL)...)
	checkpoint := errors.New("CHECKPOINT: connection refused")
	err := f.client(f.password).SwitchoverTo(bounded(t), "node-1", func(context.Context) error { return checkpoint }, func(string) {})
	if !errors.Is(err, checkpoint) {
		t.Fatalf("got %v", err)
	}
	if f.count("POST /switchover") > 0 {
		t.Fatal("switched over although prepare failed")
	}
}

func TestRestoreSynchronousModeTurnsItOnAndWaitsForASyncStandby(t *testing.T) {
	f := newFakePatroni(t)
	members := twoNodes("")
	members[1].Role = "replica"
	f.set(members...)
	f.synchronous = false
	go func() {
		time.Sleep(50 * time.Millisecond)
		f.set(twoNodes("")...)
	}()
	if err := f.client(f.password).RestoreSynchronousMode(bounded(t), 1, func(string) {}); err != nil {
		t.Fatal(err)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if !f.synchronous {
		t.Fatal("synchronous_mode still off")
	}
}
