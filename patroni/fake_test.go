package patroni

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"
)

// fakePatroni stands in for the REST API of a cluster's members: one
// httptest server answering GET /cluster, GET and PATCH /config and POST
// /switchover the way Patroni 3.0 does (api.py), from a shared state.
type fakePatroni struct {
	t        *testing.T
	srv      *httptest.Server
	password string

	mu          sync.Mutex
	members     []Member
	synchronous bool
	requests    []string       // "METHOD /path" in arrival order
	bodies      map[string]any // last decoded body per "METHOD /path"
	// onSwitchover, when set, answers POST /switchover instead of the
	// default (switch roles, 200).
	onSwitchover func(w http.ResponseWriter, leader, candidate string)
}

func newFakePatroni(t *testing.T, members ...Member) *fakePatroni {
	f := &fakePatroni{t: t, password: "s3cret-replication", members: members, synchronous: true, bodies: map[string]any{}}
	f.srv = httptest.NewServer(http.HandlerFunc(f.serve))
	t.Cleanup(f.srv.Close)
	return f
}

// client returns a Client for the fake with a short poll.
func (f *fakePatroni) client(password string) *Client {
	c := New(func(context.Context) ([]string, error) { return []string{f.srv.URL}, nil }, password, nil)
	c.poll = 5 * time.Millisecond
	return c
}

func (f *fakePatroni) set(members ...Member) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.members = members
}

// count returns how many requests key ("POST /switchover") were received.
func (f *fakePatroni) count(key string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	n := 0
	for _, r := range f.requests {
		if r == key {
			n++
		}
	}
	return n
}

// body returns the last body received for key ("PATCH /config").
func (f *fakePatroni) body(key string) any {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.bodies[key]
}

func (f *fakePatroni) serve(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	defer f.mu.Unlock()
	key := r.Method + " " + r.URL.Path
	f.requests = append(f.requests, key)
	if user, pw, ok := r.BasicAuth(); !ok || user != "patroni" || pw != f.password {
		http.Error(w, "no auth header received", http.StatusUnauthorized)
		return
	}
	var body map[string]any
	if r.Body != nil {
		b, _ := io.ReadAll(r.Body)
		if len(b) > 0 {
			if err := json.Unmarshal(b, &body); err != nil {
				http.Error(w, "bad json", http.StatusBadRequest)
				return
			}
			f.bodies[key] = body
		}
	}
	switch key {
	case "GET /cluster":
		writeJSON(w, map[string]any{"members": f.members, "scope": "pg-abc"})
	case "GET /config":
		writeJSON(w, map[string]any{"ttl": 10, "loop_wait": 1, "synchronous_mode": f.synchronous})
	case "PATCH /config":
		if on, ok := body["synchronous_mode"].(bool); ok {
			f.synchronous = on
		}
		writeJSON(w, map[string]any{"synchronous_mode": f.synchronous})
	case "POST /switchover":
		leader, _ := body["leader"].(string)
		candidate, _ := body["candidate"].(string)
		if f.onSwitchover != nil {
			f.onSwitchover(w, leader, candidate)
			return
		}
		f.switchover(w, leader, candidate)
	default:
		http.NotFound(w, r)
	}
}

// switchover checks the request as Patroni's is_failover_possible does and
// swaps the roles of leader and candidate.
func (f *fakePatroni) switchover(w http.ResponseWriter, leader, candidate string) {
	if Leader(f.members) != leader || leader == "" {
		http.Error(w, "leader name does not match", http.StatusPreconditionFailed)
		return
	}
	c, ok := member(f.members, candidate)
	if !ok {
		http.Error(w, "candidate does not exists", http.StatusPreconditionFailed)
		return
	}
	if f.synchronous && c.Role != "sync_standby" {
		http.Error(w, "candidate name does not match with sync_standby", http.StatusPreconditionFailed)
		return
	}
	for i := range f.members {
		switch f.members[i].Name {
		case leader:
			f.members[i].Role, f.members[i].State = "sync_standby", "streaming"
		case candidate:
			f.members[i].Role, f.members[i].State, f.members[i].LagBytes = "leader", "running", nil
		}
	}
	fmt.Fprintf(w, "Successfully switched over to %q", candidate)
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(v)
}

func lag(n int64) *int64 { return &n }

// twoNodes is a healthy cluster: node-0 leads, node-1 streams synchronously.
func twoNodes(base string) []Member {
	return []Member{
		{Name: "node-0", Role: "leader", State: "running", Host: "127.0.0.1", Port: 5432, Timeline: 1, APIURL: base + "/patroni"},
		{Name: "node-1", Role: "sync_standby", State: "streaming", Host: "127.0.0.2", Port: 5432, Timeline: 1, LagBytes: lag(0), APIURL: base + "/patroni"},
	}
}
