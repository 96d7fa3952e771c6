package acceptance

import (
	"encoding/json"
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/google/uuid"
	osb "sigs.k8s.io/go-open-service-broker-client/v2"

	"github.com/pgbroker/pgbroker/naming"
)

// BenchmarkMinorUpgradeGaps: the longest gap between acknowledged commits
// through DATABASE_URL while an instance upgrades from 15.18 to 15.20, each
// beside its reference in the same run. Starter (its node restarts on the
// new binaries) beside a plan change 512 -> 1024 of the same instance (the
// node restarts on the same binaries); Business (a rolling upgrade with one
// switchover) beside a bare Patroni switchover of the same cluster.
func BenchmarkMinorUpgradeGaps(b *testing.B) {
	for range b.N {
		both := offeredVersions(b)
		br := newBroker(b, "PGBROKER_POSTGRES_VERSIONS="+debian15)
		starter, changes := starterUpgradeGaps(b, br, both)
		br.restartWith("PGBROKER_POSTGRES_VERSIONS", debian15)
		business, switchovers := businessUpgradeGaps(b, br, both)
		b.ReportMetric(median(starter).Seconds(), "starter_upgrade_gap_median_s")
		b.ReportMetric(median(business).Seconds(), "business_upgrade_gap_median_s")
		fmt.Printf("\nMinor upgrade 15.18 -> 15.20: longest gap between acknowledged commits through DATABASE_URL, same run\n")
		fmt.Printf("  Starter upgrade                median %5.2f s  p95 %5.2f s  runs %v\n", median(starter).Seconds(), p95(starter).Seconds(), secs(starter))
		fmt.Printf("  Starter plan change 512->1024  median %5.2f s  p95 %5.2f s  runs %v  ratio %.2f\n", median(changes).Seconds(), p95(changes).Seconds(), secs(changes), median(starter).Seconds()/median(changes).Seconds())
		fmt.Printf("  Business rolling upgrade       median %5.2f s  p95 %5.2f s  runs %v\n", median(business).Seconds(), p95(business).Seconds(), secs(business))
		fmt.Printf("  bare Patroni switchover        median %5.2f s  p95 %5.2f s  runs %v  ratio %.2f\n\n", median(switchovers).Seconds(), p95(switchovers).Seconds(), secs(switchovers), median(business).Seconds()/median(switchovers).Seconds())
	}
}

// businessBenchRuns is how many Business clusters the upgrade bench makes
// (each takes about a minute and two nodes).
const businessBenchRuns = 2

// provisionOn15_18 provisions n instances on plan with br (which offers 15.18
// only), all at once, then restarts br offering both versions.
func provisionOn15_18(b *testing.B, br *broker, plan string, n int, both string) []string {
	c := br.client()
	ids := make([]string, n)
	ops := make([]*osb.OperationKey, n)
	for r := range ids {
		ids[r] = uuid.NewString()
		resp, err := c.ProvisionInstance(&osb.ProvisionRequest{InstanceID: ids[r], AcceptsIncomplete: true, ServiceID: serviceID,
			PlanID: plan, OrganizationGUID: "org-bench", SpaceGUID: "space-bench"})
		if err != nil {
			b.Fatal(err)
		}
		ops[r] = resp.OperationKey
	}
	for r, id := range ids {
		waitOperation(b, c, id, ops[r], 5*time.Minute)
	}
	br.restartWith("PGBROKER_POSTGRES_VERSIONS", both)
	return ids
}

// upgradeAndWait asks for the upgrade of instance id to 15.20 and waits for it.
func upgradeAndWait(b *testing.B, br *broker, id string) {
	status, body := requestUpgrade(br, id, "15.20.0")
	var accepted struct {
		Operation string `json:"operation"`
	}
	if err := json.Unmarshal([]byte(body), &accepted); err != nil || status != http.StatusAccepted {
		b.Fatalf("upgrade: %d %s", status, body)
	}
	op := osb.OperationKey(accepted.Operation)
	waitOperation(b, br.client(), id, &op, 5*time.Minute)
}

func starterUpgradeGaps(b *testing.B, br *broker, both string) (upgrades, changes []time.Duration) {
	ids := provisionOn15_18(b, br, "postgresql-starter-512", benchRuns, both)
	c := br.client()
	for _, id := range ids {
		databaseURL := bind(b, c, id, uuid.NewString(), "postgresql-starter-512", nil)["DATABASE_URL"].(string)
		createAcks(b, databaseURL)
		plan := "postgresql-starter-1024"
		changes = append(changes, writeGap(b, databaseURL, func() {
			up, err := c.UpdateInstance(&osb.UpdateInstanceRequest{InstanceID: id, AcceptsIncomplete: true, ServiceID: serviceID, PlanID: &plan})
			if err != nil {
				b.Fatal(err)
			}
			waitOperation(b, c, id, up.OperationKey, 5*time.Minute)
		}))
		upgrades = append(upgrades, writeGap(b, databaseURL, func() { upgradeAndWait(b, br, id) }))
		deprovision(b, c, id, plan)
	}
	return upgrades, changes
}

func businessUpgradeGaps(b *testing.B, br *broker, both string) (upgrades, switchovers []time.Duration) {
	ids := provisionOn15_18(b, br, businessPlan, businessBenchRuns, both)
	c := br.client()
	for _, id := range ids {
		databaseURL := bind(b, c, id, uuid.NewString(), businessPlan, nil)["DATABASE_URL"].(string)
		createAcks(b, databaseURL)
		upgrades = append(upgrades, writeGap(b, databaseURL, func() { upgradeAndWait(b, br, id) }))
		short := naming.ShortID(id)
		waitClusterHealthy(b, short, 2*time.Minute)
		switchovers = append(switchovers, writeGap(b, databaseURL, func() { handSwitchover(b, short) }))
		deprovision(b, c, id, businessPlan)
	}
	return upgrades, switchovers
}

// writeGap runs change under a writer through databaseURL and returns the
// longest gap between two acknowledged commits; every acknowledged commit
// must be there after.
func writeGap(b *testing.B, databaseURL string, change func()) time.Duration {
	w := startWriter(b, databaseURL)
	w.waitAcks(b, 20, time.Minute)
	w.resetGap()
	change()
	w.waitAcks(b, w.acked()+20, 2*time.Minute)
	acked, gap := w.stop()
	checkAcked(b, databaseURL, acked)
	return gap
}
