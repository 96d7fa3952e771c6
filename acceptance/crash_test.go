package acceptance

import (
	"context"
	"testing"
	"time"

	"github.com/google/uuid"
	osb "sigs.k8s.io/go-open-service-broker-client/v2"
)

// Crash tests restart the broker after a SIGKILL; River takes a job whose
// attempt is older than PGBROKER_RESCUE_AFTER as crashed and runs it again.
var crashEnv = []string{"PGBROKER_ATTEMPT_TIMEOUT=8s", "PGBROKER_RESCUE_AFTER=10s"}

const crashPlan = "postgresql-starter-512"

// crashAndRestart waits for the broker to kill itself at the crash point,
// lets the attempt age past the rescue threshold, and starts it again
// without the crash point.
func crashAndRestart(t *testing.T, b *broker, point string) {
	t.Helper()
	if !b.crashed(2 * time.Minute) {
		t.Fatalf("the broker did not crash at %s", point)
	}
	time.Sleep(10 * time.Second)
	b.restartWithout("PGBROKER_CRASH_AT")
}

func startProvision(t *testing.T, c osb.Client, id string) *osb.OperationKey {
	t.Helper()
	resp, err := c.ProvisionInstance(provisionRequest(id, crashPlan))
	if err != nil {
		t.Fatal(err)
	}
	return resp.OperationKey
}

// assertServes checks the instance has exactly one node job with one running
// allocation and answers through a new binding.
func assertServes(t *testing.T, c osb.Client, id string) {
	t.Helper()
	if n := nodeJobsNamed(t, id); n != 1 {
		t.Fatalf("%d node jobs, want exactly 1", n)
	}
	if n := runningNodeAllocs(t, id); n != 1 {
		t.Fatalf("%d running node allocations, want 1", n)
	}
	creds := bind(t, c, id, uuid.NewString(), crashPlan, nil)
	conn := connect(t, creds["DATABASE_URL"].(string))
	var one int
	if err := conn.QueryRow(context.Background(), "SELECT 1").Scan(&one); err != nil {
		t.Fatal(err)
	}
	conn.Close(context.Background())
}

// assertGone checks nothing of the instance is left: jobs, data, secrets.
func assertGone(t *testing.T, id string) {
	t.Helper()
	if n := nodeJobsNamed(t, id); n != 0 {
		t.Fatalf("%d node jobs left", n)
	}
	if exists(dataDir(id)) {
		t.Fatalf("data directory %s left", dataDir(id))
	}
	if left := instanceVariables(t, id); len(left) > 0 {
		t.Fatalf("Nomad Variables left: %v", left)
	}
}

// TestBrokerKilledDuringProvisionFinishes: SIGKILL at each step of
// provisioning, restart: the operation completes, nothing twice.
func TestBrokerKilledDuringProvisionFinishes(t *testing.T) {
	for _, point := range []string{"provision:secrets", "provision:nodes-registered", "provision:gateways-registered",
		"provision:nodes-running", "provision:database", "operation:done"} {
		t.Run(point, func(t *testing.T) {
			t.Parallel()
			b := newBroker(t, append(crashEnv, "PGBROKER_CRASH_AT="+point)...)
			c := b.client()
			id := uuid.NewString()
			op := startProvision(t, c, id)
			crashAndRestart(t, b, point)
			waitOperation(t, c, id, op, 3*time.Minute)
			assertServes(t, c, id)
			deprovision(t, c, id, crashPlan)
			assertGone(t, id)
		})
	}
}

// TestBrokerKilledDuringUpdateFinishes: SIGKILL right after the new node job
// version is registered; the update completes with the data kept.
func TestBrokerKilledDuringUpdateFinishes(t *testing.T) {
	t.Parallel()
	b := newBroker(t, append(crashEnv, "PGBROKER_CRASH_AT=update:registered")...)
	c := b.client()
	id := uuid.NewString()
	waitOperation(t, c, id, startProvision(t, c, id), 3*time.Minute)
	creds := bind(t, c, id, uuid.NewString(), crashPlan, nil)
	conn := connect(t, creds["DATABASE_URL"].(string))
	mustExec(t, conn, "CREATE TABLE kept (n int); INSERT INTO kept VALUES (1), (2), (3)")
	conn.Close(context.Background())
	plan := "postgresql-starter-1024"
	up, err := c.UpdateInstance(&osb.UpdateInstanceRequest{InstanceID: id, AcceptsIncomplete: true, ServiceID: serviceID, PlanID: &plan})
	if err != nil {
		t.Fatal(err)
	}
	crashAndRestart(t, b, "update:registered")
	waitOperation(t, c, id, up.OperationKey, 3*time.Minute)
	if mem := nodeMemoryMiB(t, id); mem != 1024 {
		t.Fatalf("memory %d MiB, want 1024", mem)
	}
	again := connect(t, creds["DATABASE_URL"].(string))
	if n := count(t, again, "kept"); n != 3 {
		t.Fatalf("%d rows after the update, want 3", n)
	}
	again.Close(context.Background())
	deprovision(t, c, id, plan)
	assertGone(t, id)
}

// TestBrokerKilledDuringDeprovisionFinishes: SIGKILL after the allocations
// stopped, and after the data directory was deleted: nothing is left behind.
func TestBrokerKilledDuringDeprovisionFinishes(t *testing.T) {
	for _, point := range []string{"deprovision:stopped", "deprovision:cleaned"} {
		t.Run(point, func(t *testing.T) {
			t.Parallel()
			b := newBroker(t, append(crashEnv, "PGBROKER_CRASH_AT="+point)...)
			c := b.client()
			id := uuid.NewString()
			waitOperation(t, c, id, startProvision(t, c, id), 3*time.Minute)
			if _, err := c.DeprovisionInstance(&osb.DeprovisionRequest{InstanceID: id, AcceptsIncomplete: true, ServiceID: serviceID, PlanID: crashPlan}); err != nil {
				t.Fatal(err)
			}
			crashAndRestart(t, b, point)
			deadline := time.Now().Add(3 * time.Minute)
			for {
				_, err := c.PollLastOperation(&osb.LastOperationRequest{InstanceID: id})
				if osb.IsGoneError(err) {
					break
				}
				if time.Now().After(deadline) {
					t.Fatalf("deprovision did not finish after the restart: %v", err)
				}
				time.Sleep(200 * time.Millisecond)
			}
			assertGone(t, id)
		})
	}
}

// TestBrokerKilledDuringBindFinishesBinding: SIGKILL after the role was
// created but before the binding was recorded; the platform's retry binds,
// with one role, and unbind after a crash completes too.
func TestBrokerKilledDuringBindFinishesBinding(t *testing.T) {
	t.Parallel()
	b := newBroker(t, append(crashEnv, "PGBROKER_CRASH_AT=bind:role")...)
	c := b.client()
	id := uuid.NewString()
	waitOperation(t, c, id, startProvision(t, c, id), 3*time.Minute)
	bindingID := uuid.NewString()
	if _, err := c.Bind(&osb.BindRequest{InstanceID: id, BindingID: bindingID, ServiceID: serviceID, PlanID: crashPlan}); err == nil {
		t.Fatal("bind answered although the broker crashed")
	}
	if !b.crashed(30 * time.Second) {
		t.Fatal("the broker did not crash at bind:role")
	}
	b.env = append(b.env, "PGBROKER_CRASH_AT=unbind:role") // exec keeps the last value of a key
	b.start()
	creds := bind(t, c, id, bindingID, crashPlan, nil)
	conn := connect(t, creds["DATABASE_URL"].(string))
	var roles int
	if err := conn.QueryRow(context.Background(), "SELECT count(*) FROM pg_roles WHERE rolname LIKE 'u\\_%'").Scan(&roles); err != nil {
		t.Fatal(err)
	}
	if roles != 1 {
		t.Fatalf("%d binding roles after the retried bind, want 1", roles)
	}
	conn.Close(context.Background())
	if _, err := c.Unbind(&osb.UnbindRequest{InstanceID: id, BindingID: bindingID, ServiceID: serviceID, PlanID: crashPlan}); err == nil {
		t.Fatal("unbind answered although the broker crashed")
	}
	if !b.crashed(30 * time.Second) {
		t.Fatal("the broker did not crash at unbind:role")
	}
	b.restartWithout("PGBROKER_CRASH_AT")
	if _, err := c.Unbind(&osb.UnbindRequest{InstanceID: id, BindingID: bindingID, ServiceID: serviceID, PlanID: crashPlan}); err != nil {
		t.Fatalf("retried unbind: %v", err)
	}
	if _, err := tryConnect(creds["DATABASE_URL"].(string)); err == nil {
		t.Fatal("the unbound role can still log in")
	}
	deprovision(t, c, id, crashPlan)
	assertGone(t, id)
}
