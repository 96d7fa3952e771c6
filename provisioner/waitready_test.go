package provisioner

import (
	"context"
	"errors"
	"log/slog"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/nomad/api"
)

// refusingGateway is a gateway that routes to no server until its haproxy
// task is restarted: Ping fails, RestartTask records and heals.
type refusingGateway struct {
	AdminConn   // only Ping is called
	allocations // only Allocations is called
	allocExec   // only RestartTask is called

	mu        sync.Mutex
	restarted []string
}

func (g *refusingGateway) Ping(context.Context) error {
	g.mu.Lock()
	defer g.mu.Unlock()
	if len(g.restarted) == 0 {
		return errors.New("tls error: EOF")
	}
	return nil
}

func (g *refusingGateway) Allocations(_ context.Context, jobID string, _ bool) ([]*api.AllocationListStub, error) {
	if jobID != GatewaysJobID("0123456789ab") {
		return nil, nil
	}
	return []*api.AllocationListStub{{ID: "gw-1", ClientStatus: api.AllocClientStatusRunning},
		{ID: "gw-old", ClientStatus: api.AllocClientStatusComplete}, {ID: "gw-2", ClientStatus: api.AllocClientStatusRunning}}, nil
}

func (g *refusingGateway) RestartTask(_ context.Context, allocID, task string) error {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.restarted = append(g.restarted, allocID+"/"+task)
	return nil
}

// A gateway that keeps refusing past GatewayNudgeAfter gets its running
// haproxy tasks restarted, and the wait then ends.
func TestWaitReadyRestartsAGatewayThatKeepsRefusing(t *testing.T) {
	p := New(nil, Config{ReadyPoll: 10 * time.Millisecond, GatewayNudgeAfter: 200 * time.Millisecond}, slog.New(slog.DiscardHandler))
	g := &refusingGateway{}
	p.nomad = nomadRoles{allocations: g, allocExec: g}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	start := time.Now()
	if err := p.waitReady(ctx, Instance{ShortID: "0123456789ab"}, g, func(string) {}); err != nil {
		t.Fatalf("waitReady: %v", err)
	}
	if took := time.Since(start); took < 200*time.Millisecond {
		t.Fatalf("restarted after %v, before GatewayNudgeAfter", took)
	}
	if !slices.Equal(g.restarted, []string{"gw-1/haproxy", "gw-2/haproxy"}) {
		t.Fatalf("restarted %v, want the two running gateways' haproxy", g.restarted)
	}
}
