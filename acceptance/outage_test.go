package acceptance

import (
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	osb "sigs.k8s.io/go-open-service-broker-client/v2"
)

// nomadBehindProxy starts a broker that reaches Nomad through a proxy the
// test can stop, as if Nomad were down.
func nomadBehindProxy(t *testing.T, env ...string) (*broker, *tcpProxy) {
	t.Helper()
	u, err := url.Parse(nomadAddr)
	if err != nil {
		t.Fatal(err)
	}
	proxy := newProxy(t, u.Host)
	env = append(env, "PGBROKER_NOMAD_ADDR=http://"+proxy.addr, "PGBROKER_MAX_RETRY_DELAY=3s")
	return newBroker(t, env...), proxy
}

// TestNomadDownDuringProvisionWaitsAndCompletes: Nomad unreachable for 60 s
// right after the node job was registered; /readyz says so; the operation
// shows it is waiting and completes once Nomad is back.
func TestNomadDownDuringProvisionWaitsAndCompletes(t *testing.T) {
	b, proxy := nomadBehindProxy(t, "PGBROKER_ATTEMPT_TIMEOUT=20s", "PGBROKER_RESCUE_AFTER=30s")
	c := b.client()
	id := uuid.NewString()
	op := startProvision(t, c, id)
	waitFor(t, 60*time.Second, "node job registered", func() bool { return nodeJob(t, id) != nil })
	proxy.pause()
	down := time.Now()
	waitFor(t, 10*time.Second, "/readyz to report Nomad", func() bool {
		status, body := b.raw("GET", "/readyz", "", nil)
		return status == 503 && strings.Contains(body, `"nomad"`) && strings.Contains(body, `"state_database":"ok"`)
	})
	sawNomad := false
	for time.Since(down) < 60*time.Second {
		lo, err := c.PollLastOperation(&osb.LastOperationRequest{InstanceID: id, OperationKey: op})
		if err != nil {
			t.Fatalf("last_operation while Nomad is down: %v", err)
		}
		if lo.State != osb.StateInProgress {
			t.Fatalf("operation %s while Nomad is down: %v", lo.State, *lo.Description)
		}
		sawNomad = sawNomad || strings.Contains(*lo.Description, "Nomad")
		time.Sleep(time.Second)
	}
	if !sawNomad {
		t.Error("last_operation never said it was waiting for Nomad")
	}
	proxy.resume(t)
	waitOperation(t, c, id, op, 3*time.Minute)
	if status, body := b.raw("GET", "/readyz", "", nil); status != 200 {
		t.Fatalf("/readyz after Nomad came back: %d %s", status, body)
	}
	assertServes(t, c, id)
	deprovision(t, c, id, crashPlan)
	assertGone(t, id)
}

// TestNomadDownPastTheDeadlineFailsNamingNomad: when Nomad stays away longer
// than PGBROKER_OPERATION_DEADLINE the operation fails with a message naming
// Nomad; once Nomad is back, deprovision cleans up.
func TestNomadDownPastTheDeadlineFailsNamingNomad(t *testing.T) {
	b, proxy := nomadBehindProxy(t, "PGBROKER_ATTEMPT_TIMEOUT=5s", "PGBROKER_RESCUE_AFTER=10s", "PGBROKER_OPERATION_DEADLINE=15s")
	c := b.client()
	id := uuid.NewString()
	proxy.pause()
	op := startProvision(t, c, id)
	var last *osb.LastOperationResponse
	waitFor(t, 2*time.Minute, "the operation to fail", func() bool {
		lo, err := c.PollLastOperation(&osb.LastOperationRequest{InstanceID: id, OperationKey: op})
		if err != nil {
			t.Fatal(err)
		}
		last = lo
		return lo.State != osb.StateInProgress
	})
	if last.State != osb.StateFailed || !strings.Contains(*last.Description, "Nomad") || !strings.Contains(*last.Description, "15s") {
		t.Fatalf("operation %s: %q, want failed naming Nomad and the deadline", last.State, *last.Description)
	}
	proxy.resume(t)
	deprovision(t, c, id, crashPlan)
	assertGone(t, id)
}

func waitFor(t *testing.T, limit time.Duration, what string, ok func() bool) {
	t.Helper()
	deadline := time.Now().Add(limit)
	for !ok() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", limit, what)
		}
		time.Sleep(100 * time.Millisecond)
	}
}
