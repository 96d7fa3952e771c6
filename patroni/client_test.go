package patroni

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

func TestMembersAreReadAuthenticatedAndSortedByName(t *testing.T) {
	f := newFakePatroni(t)
	members := twoNodes(f.srv.URL)
	f.set(members[1], members[0])
	got, err := f.client(f.password).Members(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, members) {
		t.Fatalf("got %+v\nwant %+v", got, members)
	}
}

func TestMembersToleratesAStandbyWithUnknownLag(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Write([]byte(clusterJSON))
	}))
	defer srv.Close()
	c := New(func(context.Context) ([]string, error) { return []string{srv.URL}, nil }, "pw", nil)
	got, err := c.Members(context.Background())
	if err != nil {
		t.Fatalf("GET /cluster with a lag of \"unknown\": %v", err)
	}
	if want := "node-0 leader; node-1 sync_standby streaming, lag 4096 B; node-2 replica starting"; DescribeMembers(got) != want {
		t.Fatalf("got %q, want %q", DescribeMembers(got), want)
	}
}

func TestANon2xxAnswerNamesStatusAndPatronisText(t *testing.T) {
	f := newFakePatroni(t)
	_, err := f.client("wrong password").Members(context.Background())
	if err == nil || !strings.Contains(err.Error(), "401") || !strings.Contains(err.Error(), "no auth header received") {
		t.Fatalf("got %v, want the 401 and Patroni's text", err)
	}
	if strings.Contains(err.Error(), "wrong password") {
		t.Fatalf("the error shows the password: %v", err)
	}
}

func TestAMemberDownOrSilentIsSkipped(t *testing.T) {
	f := newFakePatroni(t, twoNodes("")...)
	down := httptest.NewServer(http.NotFoundHandler())
	down.Close() // connection refused
	silent := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-r.Context().Done():
		case <-time.After(5 * time.Second):
		}
	}))
	defer silent.Close()
	c := New(func(context.Context) ([]string, error) { return []string{down.URL, silent.URL, f.srv.URL}, nil }, f.password, nil)
	c.timeout = 100 * time.Millisecond
	start := time.Now()
	got, err := c.Members(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if Leader(got) != "node-0" {
		t.Fatalf("got %+v", got)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Fatalf("took %v: the silent member was not given up on after its timeout", d)
	}
}

func TestNoMemberAnsweringIsAnError(t *testing.T) {
	down := httptest.NewServer(http.NotFoundHandler())
	down.Close()
	c := New(func(context.Context) ([]string, error) { return []string{down.URL}, nil }, "pw", nil)
	if _, err := c.Members(context.Background()); err == nil || !strings.Contains(err.Error(), "no Patroni REST API answered GET /cluster") {
		t.Fatalf("got %v", err)
	}
	none := New(func(context.Context) ([]string, error) { return nil, nil }, "pw", nil)
	if _, err := none.Members(context.Background()); err == nil {
		t.Fatal("no endpoint at all: got no error")
	}
	lookup := errors.New("look up node service in Nomad: boom")
	failing := New(func(context.Context) ([]string, error) { return nil, lookup }, "pw", nil)
	if _, err := failing.Members(context.Background()); !errors.Is(err, lookup) {
		t.Fatalf("got %v, want the endpoint lookup's error", err)
	}
}

func TestSynchronousModeIsSetAndReadThroughConfig(t *testing.T) {
	f := newFakePatroni(t, twoNodes("")...)
	c := f.client(f.password)
	ctx := context.Background()
	if err := c.SetSynchronousMode(ctx, false); err != nil {
		t.Fatal(err)
	}
	if on, err := c.SynchronousMode(ctx); err != nil || on {
		t.Fatalf("after turning it off: %v, %v", on, err)
	}
	if got := f.body("PATCH /config"); !reflect.DeepEqual(got, map[string]any{"synchronous_mode": false}) {
		t.Fatalf("PATCH /config body %v", got)
	}
	if err := c.SetParameters(ctx, map[string]any{"max_connections": 120}); err != nil {
		t.Fatal(err)
	}
	want := map[string]any{"postgresql": map[string]any{"parameters": map[string]any{"max_connections": float64(120)}}}
	if got := f.body("PATCH /config"); !reflect.DeepEqual(got, want) {
		t.Fatalf("PATCH /config body %v, want %v", got, want)
	}
}

func TestSwitchoverGoesToTheLeadersOwnAPIFirst(t *testing.T) {
	f := newFakePatroni(t)
	var other atomic.Int32
	elsewhere := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		other.Add(1)
	}))
	defer elsewhere.Close()
	members := twoNodes(f.srv.URL)
	f.set(members...)
	c := New(func(context.Context) ([]string, error) { return []string{elsewhere.URL}, nil }, f.password, nil)
	if err := c.Switchover(context.Background(), members[0], "node-1"); err != nil {
		t.Fatal(err)
	}
	if n := other.Load(); n != 0 {
		t.Fatalf("the switchover went to another member first (%d requests)", n)
	}
	want := map[string]any{"leader": "node-0", "candidate": "node-1"}
	if got := f.body("POST /switchover"); !reflect.DeepEqual(got, want) {
		t.Fatalf("POST /switchover body %v, want %v", got, want)
	}
}

func TestSwitchoverRefusedCarriesPatronisReason(t *testing.T) {
	f := newFakePatroni(t)
	members := twoNodes(f.srv.URL)
	members[1].Role = "replica"
	f.set(members...)
	err := f.client(f.password).Switchover(context.Background(), members[0], "node-1")
	if err == nil || !strings.Contains(err.Error(), "412") || !strings.Contains(err.Error(), "candidate name does not match with sync_standby") {
		t.Fatalf("got %v, want Patroni's 412 and reason", err)
	}
}

func TestSwitchoverWaitsForPatronisAnswerPastTheRequestTimeout(t *testing.T) {
	f := newFakePatroni(t)
	members := twoNodes(f.srv.URL)
	f.set(members...)
	f.onSwitchover = func(w http.ResponseWriter, leader, candidate string) {
		time.Sleep(300 * time.Millisecond) // Patroni polls until the new leader holds the lock
		f.switchover(w, leader, candidate)
	}
	c := f.client(f.password)
	c.timeout = 100 * time.Millisecond
	if err := c.Switchover(context.Background(), members[0], "node-1"); err != nil {
		t.Fatalf("a switchover answered after the plain request timeout: %v", err)
	}
	if n := f.count("POST /switchover"); n != 1 {
		t.Fatalf("POST /switchover sent %d times, want once", n)
	}
}
