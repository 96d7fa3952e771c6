package gateway

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"slices"
	"testing"
	"time"

	"github.com/hashicorp/nomad/api"

	"github.com/pgbroker/pgbroker/nomad"
)

// rendered is a Business gateway's haproxy.cfg as gateways.nomad.hcl renders
// it for two nodes (abridged to the lines that matter).
const rendered = `
frontend postgres
  bind 127.0.0.1:37834
  default_backend nodes

backend nodes
  balance first
  default-server inter 250ms fastinter 100ms downinter 100ms rise 1 fall 1 on-marked-down shutdown-sessions
  option httpchk OPTIONS /primary
  server 057146c9-5cf7-ea9b-de21-9afa6cfcc55c 127.0.0.3:30150 check port 21770
  server 8a1f2c3d-0000-1111-2222-333344445555 127.0.0.1:22984 check port 20518

backend standbys
  balance roundrobin
  server 057146c9-5cf7-ea9b-de21-9afa6cfcc55c 127.0.0.3:30150 check port 21770
  server 8a1f2c3d-0000-1111-2222-333344445555 127.0.0.1:22984 check port 20518
`

var twoNodes = []*api.ServiceRegistration{
	{AllocID: "8a1f2c3d-0000-1111-2222-333344445555", Address: "127.0.0.1", Port: 22984},
	{AllocID: "057146c9-5cf7-ea9b-de21-9afa6cfcc55c", Address: "127.0.0.3", Port: 30150},
}

func TestServersOfARenderedConfigMatchTheirRegistrations(t *testing.T) {
	have, want := Servers([]byte(rendered)), Registered(twoNodes)
	if len(have) != 2 || !slices.Equal(have, want) {
		t.Fatalf("rendered %q, registered %q: want the same two servers", have, want)
	}
	if got := Servers([]byte("backend nodes\n  balance first\n  default-server inter 1s\n")); len(got) != 0 {
		t.Fatalf("an empty backend lists %q", got)
	}
	moved := []*api.ServiceRegistration{twoNodes[0], {AllocID: twoNodes[1].AllocID, Address: "127.0.0.3", Port: 30151}}
	if slices.Equal(have, Registered(moved)) {
		t.Fatal("a node on a new port compares equal to the old one")
	}
}

// fakeNomad: one instance "abc" with one gateway allocation whose rendered
// configuration is cfg.
type fakeNomad struct {
	cfg       string
	regs      []*api.ServiceRegistration
	owner     nomad.Owner
	restarts  []string
	readFails bool
	rendered  bool // the gateway predates haproxy.loaded.cfg: only haproxy.cfg reads
}

func (f *fakeNomad) path() string {
	if f.rendered {
		return RenderedPath
	}
	return LoadedPath
}

func (f *fakeNomad) JobIDs(context.Context, string) (map[string]nomad.Owner, error) {
	return map[string]nomad.Owner{"pg-abc-gateways": f.owner, "pg-abc-nodes": f.owner}, nil
}

func (f *fakeNomad) Allocations(_ context.Context, jobID string, _ bool) ([]*api.AllocationListStub, error) {
	if jobID != "pg-abc-gateways" {
		return nil, nil
	}
	return []*api.AllocationListStub{{ID: "gw-1", ClientStatus: api.AllocClientStatusRunning,
		TaskStates: map[string]*api.TaskState{Task: {State: "running"}}}}, nil
}

func (f *fakeNomad) Services(_ context.Context, name string) ([]*api.ServiceRegistration, error) {
	if name != "pg-abc-node" {
		return nil, errors.New("unexpected service " + name)
	}
	return f.regs, nil
}

func (f *fakeNomad) ReadFile(_ context.Context, allocID, path string, _ int) ([]byte, error) {
	if f.readFails || allocID != "gw-1" || path != f.path() {
		return nil, errors.New("no such file")
	}
	return []byte(f.cfg), nil
}

func (f *fakeNomad) RestartTask(_ context.Context, allocID, task string) error {
	f.restarts = append(f.restarts, allocID+"/"+task)
	return nil
}

func TestAGatewayOutOfStepIsRestartedOnlyAfterSettle(t *testing.T) {
	f := &fakeNomad{cfg: "backend nodes\n", regs: twoNodes, owner: nomad.Owner{Deployment: "d1"}}
	w := New(f, Config{Deployment: "d1", Settle: 5 * time.Second, RestartEvery: time.Minute}, slog.New(slog.NewTextHandler(io.Discard, nil)))
	now := time.Unix(1000, 0)
	w.now = func() time.Time { return now }
	ctx := context.Background()

	check := func(step string, wantRestarts int) {
		t.Helper()
		if err := w.CheckAll(ctx); err != nil {
			t.Fatalf("%s: %v", step, err)
		}
		if len(f.restarts) != wantRestarts {
			t.Fatalf("%s: restarts %q, want %d", step, f.restarts, wantRestarts)
		}
	}
	check("first seen out of step", 0)
	now = now.Add(4 * time.Second)
	check("out of step for 4s", 0)
	now = now.Add(2 * time.Second)
	check("out of step for 6s", 1)
	if f.restarts[0] != "gw-1/"+Task {
		t.Fatalf("restarted %q", f.restarts[0])
	}
	now = now.Add(10 * time.Second)
	check("still out of step 10s after the restart", 1)
	now = now.Add(10 * time.Second)
	check("still out of step 20s after the restart", 1)
	now = now.Add(50 * time.Second)
	check("still out of step past RestartEvery", 2)

	f.cfg = rendered
	now = now.Add(time.Hour)
	check("in step", 2)
	now = now.Add(time.Hour)
	check("in step, an hour later", 2)

	// The registrations change while the gateway catches up: the wait
	// starts again with each change.
	f.cfg = "backend nodes\n"
	check("a node left", 2)
	now = now.Add(4 * time.Second)
	f.regs = twoNodes[:1]
	check("another change, 4s later", 2)
	now = now.Add(4 * time.Second)
	check("out of step 4s with these registrations", 2)
	now = now.Add(2 * time.Second)
	check("out of step 6s with these registrations", 3)
}

func TestOnlyTheDeploymentsReadableGatewaysOutOfStepAreRestarted(t *testing.T) {
	for _, tc := range []struct {
		name string
		f    *fakeNomad
	}{
		{"another deployment", &fakeNomad{owner: nomad.Owner{Deployment: "d2"}}},
		{"before identities", &fakeNomad{owner: nomad.Owner{}}},
		{"config not rendered yet", &fakeNomad{owner: nomad.Owner{Deployment: "d1"}, readFails: true}},
		{"in step, by its rendered file", &fakeNomad{owner: nomad.Owner{Deployment: "d1"}, rendered: true, cfg: rendered}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.f.cfg == "" {
				tc.f.cfg = "backend nodes\n"
			}
			tc.f.regs = twoNodes
			w := New(tc.f, Config{Deployment: "d1", Settle: time.Second}, slog.New(slog.NewTextHandler(io.Discard, nil)))
			now := time.Unix(1000, 0)
			w.now = func() time.Time { return now }
			for range 5 {
				if err := w.CheckAll(context.Background()); err != nil {
					t.Fatal(err)
				}
				now = now.Add(time.Minute)
			}
			if len(tc.f.restarts) != 0 {
				t.Fatalf("restarted %q", tc.f.restarts)
			}
		})
	}
}
