package acceptance

import (
	"fmt"
	"maps"
	"testing"
	"time"

	"github.com/google/uuid"
	osb "sigs.k8s.io/go-open-service-broker-client/v2"

	"github.com/pgbroker/pgbroker/naming"
)

// benchReconcileInterval is PGBROKER_RECONCILE_INTERVAL of the benchmark's
// broker: the least the configuration allows, so the figure is mostly the
// repair itself (a loss waits at most this long to be seen).
const benchReconcileInterval = time.Second

// BenchmarkStarterRepairVsProvision measures, in one run, how long a Starter
// instance whose jobs and Variables Nomad lost (loseFromNomad) takes to
// answer again to the credentials handed out before (the repair puts the
// gateway back on its former client; a move is counted), with its row,
// against a fresh Starter provision (PUT to a SELECT 1 through the new
// binding's DATABASE_URL), 5 runs each, and reports both medians and their
// ratio (issue 17: "repair time after a purge, beside a fresh provision").
// Run with -benchtime=1x: each iteration is the whole comparison.
func BenchmarkStarterRepairVsProvision(b *testing.B) {
	for i := 0; i < b.N; i++ {
		repairVsProvision(b, "Starter", "postgresql-starter-512")
	}
}

// BenchmarkBusinessRepairVsProvision is BenchmarkStarterRepairVsProvision
// for a Business instance (two nodes under Patroni, two gateways): the
// repair registers each node again on the client of its own data and waits
// for the standby to stream. A repair whose nodes or gateways came back on
// other clients is counted.
func BenchmarkBusinessRepairVsProvision(b *testing.B) {
	for i := 0; i < b.N; i++ {
		repairVsProvision(b, "Business", businessPlan)
	}
}

// repairVsProvision is one comparison of the benchmarks above on plan, of
// tier.
func repairVsProvision(b *testing.B, tier, plan string) {
	br := newBroker(b, "PGBROKER_RECONCILE_INTERVAL="+benchReconcileInterval.String())
	c := br.client()
	var provisions, repairs []time.Duration
	moved := 0 // repairs whose gateways (or nodes) came back on other clients
	for r := 0; r < benchRuns; r++ {
		id := uuid.NewString()
		start := time.Now()
		resp, err := c.ProvisionInstance(&osb.ProvisionRequest{
			InstanceID: id, AcceptsIncomplete: true, ServiceID: serviceID, PlanID: plan,
			OrganizationGUID: "org-bench", SpaceGUID: "space-bench",
		})
		if err != nil {
			b.Fatal(err)
		}
		waitOperation(b, c, id, resp.OperationKey, 5*time.Minute)
		creds := bind(b, c, id, uuid.NewString(), plan, nil)
		url := creds["DATABASE_URL"].(string)
		benchExec(b, url, "CREATE TABLE kept (body text); INSERT INTO kept VALUES ('before the loss')")
		provisions = append(provisions, time.Since(start))

		waitRunning(b, br, id)
		short := naming.ShortID(id)
		gatewaysBefore := allocClients(runningAllocs(b, naming.GatewaysJobID(short)))
		nodesBefore := groupClients(b, naming.NodesJobID(short))
		loseFromNomad(b, id)
		lost := time.Now()
		for err := connects(url); err != nil; err = connects(url) {
			if time.Since(lost) > 4*time.Minute {
				b.Fatalf("run %d: the credentials handed out before do not connect 4 min after the loss: %v", r, err)
			}
			time.Sleep(100 * time.Millisecond)
		}
		repairs = append(repairs, time.Since(lost))
		benchExec(b, url, "SELECT 1 FROM kept WHERE body = 'before the loss'")
		waitRunning(b, br, id) // the repair holds the instance until it ends (a deprovision meanwhile is a 422)
		if !maps.Equal(allocClients(runningAllocs(b, naming.GatewaysJobID(short))), gatewaysBefore) ||
			!maps.Equal(groupClients(b, naming.NodesJobID(short)), nodesBefore) {
			moved++
		}
		deprovision(b, c, id, plan)
	}
	mp, mr := median(provisions), median(repairs)
	b.ReportMetric(mr.Seconds(), "repair_s")
	b.ReportMetric(mp.Seconds(), "provision_s")
	b.ReportMetric(mr.Seconds()/mp.Seconds(), "ratio")
	fmt.Printf("\n%s repair after Nomad lost its jobs and Variables (loss -> the credentials handed out before connect at the gateway), %d runs each, same run\n", tier, benchRuns)
	fmt.Printf("  repair (reconcile every %s)  median %6.2f s  runs %v\n", benchReconcileInterval, mr.Seconds(), secs(repairs))
	fmt.Printf("  fresh provision (PUT -> bind -> write)  median %6.2f s  runs %v  ratio %.2f\n", mp.Seconds(), secs(provisions), mr.Seconds()/mp.Seconds())
	fmt.Printf("  gateways or nodes back on other clients (the DATABASE_URL handed out before names the former addresses): %d of %d\n\n", moved, benchRuns)
}

// waitRunning waits up to 30 s for GET instance to report status "running"
// (the loop has seen the instance whole before it is lost).
func waitRunning(b *testing.B, br *broker, id string) {
	for deadline := time.Now().Add(30 * time.Second); instanceStatus(b, br, id) != "running"; time.Sleep(200 * time.Millisecond) {
		if time.Now().After(deadline) {
			b.Fatalf("instance %s: status %q, want running", id, instanceStatus(b, br, id))
		}
	}
}
