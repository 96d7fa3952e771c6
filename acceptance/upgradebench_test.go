package acceptance

import (
	"encoding/json"
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/google/uuid"
	osb "sigs.k8s.io/go-open-service-broker-client/v2"
)

// BenchmarkStarterMinorUpgradeGap: the longest gap between acknowledged
// commits through DATABASE_URL while a Starter instance upgrades from 15.18
// to 15.20 (its node restarts on the new binaries), beside the gap of a
// plan change 512 -> 1024 of the same instance in the same run (the node
// restarts on the same binaries): the reference, since both restart one
// node.
func BenchmarkStarterMinorUpgradeGap(b *testing.B) {
	for range b.N {
		both := offeredVersions(b)
		br := newBroker(b, "PGBROKER_POSTGRES_VERSIONS="+debian15)
		c := br.client()
		ids := make([]string, benchRuns)
		for r := range ids {
			ids[r] = uuid.NewString()
			resp, err := c.ProvisionInstance(&osb.ProvisionRequest{InstanceID: ids[r], AcceptsIncomplete: true, ServiceID: serviceID,
				PlanID: "postgresql-starter-512", OrganizationGUID: "org-bench", SpaceGUID: "space-bench"})
			if err != nil {
				b.Fatal(err)
			}
			waitOperation(b, c, ids[r], resp.OperationKey, 5*time.Minute)
		}
		br.restartWith("PGBROKER_POSTGRES_VERSIONS", both)
		c = br.client()
		var upgrades, changes []time.Duration
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
			upgrades = append(upgrades, writeGap(b, databaseURL, func() {
				status, body := requestUpgrade(br, id, "15.20.0")
				var accepted struct {
					Operation string `json:"operation"`
				}
				if err := json.Unmarshal([]byte(body), &accepted); err != nil || status != http.StatusAccepted {
					b.Fatalf("upgrade: %d %s", status, body)
				}
				op := osb.OperationKey(accepted.Operation)
				waitOperation(b, c, id, &op, 5*time.Minute)
			}))
			deprovision(b, c, id, plan)
		}
		b.ReportMetric(median(upgrades).Seconds(), "starter_upgrade_gap_median_s")
		fmt.Printf("\nStarter minor upgrade 15.18 -> 15.20: longest gap between acknowledged commits through DATABASE_URL, %d instances, same run\n", benchRuns)
		fmt.Printf("  upgrade 15.18 -> 15.20         median %5.2f s  p95 %5.2f s  runs %v\n", median(upgrades).Seconds(), p95(upgrades).Seconds(), secs(upgrades))
		fmt.Printf("  plan change 512 -> 1024        median %5.2f s  p95 %5.2f s  runs %v  ratio %.2f\n\n", median(changes).Seconds(), p95(changes).Seconds(), secs(changes), median(upgrades).Seconds()/median(changes).Seconds())
	}
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
