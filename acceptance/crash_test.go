package acceptance

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	osb "sigs.k8s.io/go-open-service-broker-client/v2"
)

// TestBrokerKilledDuringProvisionFinishes: SIGKILL while the node job is
// starting, start again: the operation completes with exactly one node job.
func TestBrokerKilledDuringProvisionFinishes(t *testing.T) {
	env := []string{"PGBROKER_ATTEMPT_TIMEOUT=10s", "PGBROKER_RESCUE_AFTER=15s"}
	b := newBroker(t, env...)
	c := b.client()
	id := uuid.NewString()
	resp, err := c.ProvisionInstance(&osb.ProvisionRequest{
		InstanceID: id, AcceptsIncomplete: true, ServiceID: serviceID, PlanID: "postgresql-starter-512",
		OrganizationGUID: "org-acceptance", SpaceGUID: "space-acceptance",
	})
	if err != nil {
		t.Fatal(err)
	}
	// Kill as soon as the worker has registered the node job.
	deadline := time.Now().Add(60 * time.Second)
	for nodeJob(t, id) == nil {
		if time.Now().After(deadline) {
			t.Fatal("node job never registered")
		}
		time.Sleep(20 * time.Millisecond)
	}
	b.kill()
	b.start()
	waitOperation(t, c, id, resp.OperationKey, 3*time.Minute)
	if n := nodeJobsNamed(t, id); n != 1 {
		t.Fatalf("%d node jobs after restart, want exactly 1", n)
	}
	if n := runningNodeAllocs(t, id); n != 1 {
		t.Fatalf("%d running node allocations, want 1", n)
	}
	creds := bind(t, c, id, uuid.NewString(), "postgresql-starter-512", nil)
	conn := connect(t, creds["DATABASE_URL"].(string))
	var one int
	if err := conn.QueryRow(context.Background(), "SELECT 1").Scan(&one); err != nil {
		t.Fatal(err)
	}
	conn.Close(context.Background())
	if !strings.Contains(b.logs.String(), "operation attempt") {
		t.Fatal("broker log shows no operation attempt")
	}
	deprovision(t, c, id, "postgresql-starter-512")
}
