package acceptance

import (
	"encoding/json"
	"fmt"
	"net/http"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	osb "sigs.k8s.io/go-open-service-broker-client/v2"

	"github.com/pgbroker/pgbroker/naming"
)

// BenchmarkPlanChangeGaps measures the longest gap between two commits a
// writer sees acknowledged through DATABASE_URL while the instance changes
// plan, median and p95 over 5 changes each, beside a same-run reference:
//   - Business 512 <-> 1024 (rolling, one switchover; needed <= 1 s),
//     beside a bare Patroni switchover (POST /switchover by hand) on the
//     same cluster, the floor of a change that moves the leader;
//   - Starter 512 <-> 1024 (the node restarts; needed <= 5 s), beside a
//     hand-run pg_ctl restart -m fast of a cluster on this machine.
//
// Run with -benchtime=1x.
func BenchmarkPlanChangeGaps(b *testing.B) {
	for i := 0; i < b.N; i++ {
		br := newBroker(b)
		business, switchovers := planChangeGaps(b, br, []string{"postgresql-business-1024", "postgresql-business-512"}, true)
		starter, _ := planChangeGaps(b, br, []string{"postgresql-starter-1024", "postgresql-starter-512"}, false)
		var restarts []time.Duration
		for r := 0; r < benchRuns; r++ {
			restarts = append(restarts, handRestart(b, r))
		}
		b.ReportMetric(p95(business).Seconds(), "business_change_gap_p95_s")
		b.ReportMetric(p95(starter).Seconds(), "starter_change_gap_p95_s")
		fmt.Printf("\nPlan change: longest gap between acknowledged commits through DATABASE_URL, %d changes each, same run\n", benchRuns)
		fmt.Printf("  Business 512<->1024 (rolling)  median %5.2f s  p95 %5.2f s  runs %v  (needed: <= 1 s)\n", median(business).Seconds(), p95(business).Seconds(), secs(business))
		fmt.Printf("  bare Patroni switchover        median %5.2f s  p95 %5.2f s  runs %v  ratio %.2f\n", median(switchovers).Seconds(), p95(switchovers).Seconds(), secs(switchovers), median(business).Seconds()/median(switchovers).Seconds())
		fmt.Printf("  Starter 512<->1024             median %5.2f s  p95 %5.2f s  runs %v  (needed: <= 5 s)\n", median(starter).Seconds(), p95(starter).Seconds(), secs(starter))
		fmt.Printf("  pg_ctl restart -m fast by hand median %5.2f s  p95 %5.2f s  runs %v  ratio %.2f\n\n", median(restarts).Seconds(), p95(restarts).Seconds(), secs(restarts), median(starter).Seconds()/median(restarts).Seconds())
	}
}

// planChangeGaps provisions an instance on plans[1], then changes its plan
// back and forth benchRuns times under a writer, returning the longest
// commit gap of each change; with switchovers, also the gaps of benchRuns
// bare Patroni switchovers on the same cluster.
func planChangeGaps(b *testing.B, br *broker, plans []string, switchovers bool) (gaps, bare []time.Duration) {
	c := br.client()
	id := uuid.NewString()
	resp, err := c.ProvisionInstance(&osb.ProvisionRequest{InstanceID: id, AcceptsIncomplete: true, ServiceID: serviceID,
		PlanID: plans[1], OrganizationGUID: "org-bench", SpaceGUID: "space-bench"})
	if err != nil {
		b.Fatal(err)
	}
	waitOperation(b, c, id, resp.OperationKey, 5*time.Minute)
	defer deprovision(b, c, id, plans[(benchRuns+1)%2])
	creds := bind(b, c, id, uuid.NewString(), plans[1], nil)
	databaseURL := creds["DATABASE_URL"].(string)
	createAcks(b, databaseURL)
	short := naming.ShortID(id)
	measure := func(change func()) time.Duration {
		w := startWriter(b, databaseURL)
		w.waitAcks(b, 20, time.Minute)
		w.resetGap()
		change()
		before := w.acked()
		w.waitAcks(b, before+20, 2*time.Minute)
		_, gap := w.stop()
		return gap
	}
	for r := 0; r < benchRuns; r++ {
		plan := plans[r%2]
		gaps = append(gaps, measure(func() {
			up, err := c.UpdateInstance(&osb.UpdateInstanceRequest{InstanceID: id, AcceptsIncomplete: true, ServiceID: serviceID, PlanID: &plan})
			if err != nil {
				b.Fatal(err)
			}
			waitOperation(b, c, id, up.OperationKey, 10*time.Minute)
		}))
	}
	if switchovers {
		for r := 0; r < benchRuns; r++ {
			waitClusterHealthy(b, short, 2*time.Minute)
			bare = append(bare, measure(func() { handSwitchover(b, short) }))
		}
	}
	return gaps, bare
}

// handSwitchover does what an operator would (patronictl switchover): POST
// /switchover to the leader's Patroni naming the synchronous standby, then
// waits for it to lead.
func handSwitchover(b *testing.B, short string) { handSwitchoverT(b, short) }

func handSwitchoverT(b testing.TB, short string) {
	v, _, err := nomadClient(b).Variables().Read("nomad/jobs/"+naming.NodesJobID(short), nil)
	if err != nil {
		b.Fatal(err)
	}
	password := v.Items[naming.ItemPatroniPassword]
	regs, _, err := nomadClient(b).Services().Get(naming.NodeService(short), nil)
	if err != nil || len(regs) == 0 {
		b.Fatalf("node services: %v", err)
	}
	var base string
	for _, t := range regs[0].Tags {
		if port, ok := strings.CutPrefix(t, "patroni="); ok {
			base = "https://" + regs[0].Address + ":" + port
		}
	}
	client := patroniClient(b, short, time.Second) // a frozen member does not answer
	leader, standby := patroniRoles(client, base+"/cluster")
	// As patronictl does: the request goes to the leader's own REST API.
	if api := memberAPI(client, base+"/cluster", leader); api != "" {
		base = api
	}
	req, _ := http.NewRequest(http.MethodPost, base+"/switchover", strings.NewReader(fmt.Sprintf(`{"leader":%q,"candidate":%q}`, leader, standby)))
	req.SetBasicAuth("patroni", password)
	resp, err := patroniClient(b, short, time.Minute).Do(req)
	if err != nil {
		b.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b.Fatalf("switchover: %s", resp.Status)
	}
	for deadline := time.Now().Add(time.Minute); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		if l, _ := patroniRoles(client, base+"/cluster"); l == standby {
			return
		}
	}
	b.Fatalf("%s did not lead within a minute of the switchover", standby)
}

// memberAPI returns the REST API base URL of member name, "" when unknown.
func memberAPI(client *http.Client, url, name string) string {
	var cluster struct {
		Members []struct {
			Name   string
			APIURL string `json:"api_url"`
		} `json:"members"`
	}
	resp, err := client.Get(url)
	if err != nil {
		return ""
	}
	defer resp.Body.Close()
	if err := json.NewDecoder(resp.Body).Decode(&cluster); err != nil {
		return ""
	}
	for _, m := range cluster.Members {
		if m.Name == name {
			return strings.TrimSuffix(m.APIURL, "/patroni")
		}
	}
	return ""
}

// patroniRoles returns the names of the running leader and the sync standby.
func patroniRoles(client *http.Client, url string) (leader, syncStandby string) {
	var cluster struct {
		Members []struct{ Name, Role, State string } `json:"members"`
	}
	resp, err := client.Get(url)
	if err != nil {
		return "", ""
	}
	defer resp.Body.Close()
	if err := json.NewDecoder(resp.Body).Decode(&cluster); err != nil {
		return "", ""
	}
	for _, m := range cluster.Members {
		switch {
		case m.Role == "leader" && m.State == "running":
			leader = m.Name
		case m.Role == "sync_standby":
			syncStandby = m.Name
		}
	}
	return leader, syncStandby
}

// handRestart times pg_ctl restart -m fast -w of a hand-made cluster with a
// first SELECT 1 after it: the floor of a single node's restart here.
func handRestart(b *testing.B, run int) time.Duration {
	dir := postgresDir(b, "pgbroker-bench-restart-")
	pgdata := filepath.Join(dir, "data")
	port := strconv.Itoa(39100 + run)
	bin := "/usr/lib/postgresql/15/bin/"
	// Unix socket only: a TCP port in the ephemeral range may be taken by
	// any client socket on this busy machine.
	opts := "-p " + port + " -k " + dir + " -c listen_addresses=''"
	asPostgres(b, bin+"initdb", "-D", pgdata, "-U", "postgres", "--auth=trust", "--no-sync")
	asPostgres(b, bin+"pg_ctl", "-D", pgdata, "-w", "-l", filepath.Join(dir, "log"), "-o", opts, "start")
	url := "postgres://postgres@/postgres?sslmode=disable&host=" + dir + "&port=" + port
	benchExec(b, url, "SELECT 1")
	start := time.Now()
	asPostgres(b, bin+"pg_ctl", "-D", pgdata, "-w", "-m", "fast", "-l", filepath.Join(dir, "log"), "-o", opts, "restart")
	benchExec(b, url, "SELECT 1")
	took := time.Since(start)
	asPostgres(b, bin+"pg_ctl", "-D", pgdata, "-m", "immediate", "stop")
	return took
}
