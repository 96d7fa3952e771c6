package acceptance

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	osb "sigs.k8s.io/go-open-service-broker-client/v2"

	"github.com/pgbroker/pgbroker/naming"
)

// debian15 is Debian bookworm's postgresql-15 (15.18): the only version a
// broker offered before versions were configuration.
const debian15 = "15.18=/usr/lib/postgresql/15/bin"

// offeredVersions is the stack's PGBROKER_POSTGRES_VERSIONS when it offers
// 15.20 (scripts/build-postgres.sh); without it the upgrade tests fail in
// CI and are skipped elsewhere.
func offeredVersions(t testing.TB) string {
	t.Helper()
	v := os.Getenv("PGBROKER_POSTGRES_VERSIONS")
	if !strings.Contains(v, "15.20=") {
		msg := "PGBROKER_POSTGRES_VERSIONS offers no 15.20 (" + v + "): run `make deps` (scripts/build-postgres.sh) and the stack's env"
		if os.Getenv("CI") == "true" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	return v
}

// instanceAttributes is GET instance's metadata.attributes.
func instanceAttributes(t testing.TB, b *broker, id string) map[string]string {
	t.Helper()
	attrs, err := tryInstanceAttributes(b, id)
	if err != nil {
		t.Fatal(err)
	}
	return attrs
}

// tryInstanceAttributes is instanceAttributes, or an error with the answer
// when GET instance is not a 200 with a JSON body.
func tryInstanceAttributes(b *broker, id string) (map[string]string, error) {
	status, body := b.raw(http.MethodGet, "/v2/service_instances/"+id, "", nil)
	var got struct {
		Metadata struct {
			Attributes map[string]string `json:"attributes"`
		} `json:"metadata"`
	}
	if err := json.Unmarshal([]byte(body), &got); err != nil || status != http.StatusOK {
		return nil, fmt.Errorf("GET instance: %d %s (%v)", status, body, err)
	}
	return got.Metadata.Attributes, nil
}

// requestUpgrade sends what cf update-service --upgrade sends: an update
// carrying maintenance_info, and returns the status and body.
func requestUpgrade(b *broker, id, version string) (int, string) {
	body := `{"service_id":"` + serviceID + `","maintenance_info":{"version":"` + version + `"}}`
	return b.raw(http.MethodPatch, "/v2/service_instances/"+id+"?accepts_incomplete=true", body, nil)
}

// serverVersion is SHOW server_version through databaseURL ("15.20 (Debian 15.20-0+deb12u1)").
func serverVersion(t testing.TB, databaseURL string) string {
	t.Helper()
	conn, err := tryConnect(databaseURL)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	var v string
	if err := conn.QueryRow(context.Background(), "SHOW server_version").Scan(&v); err != nil {
		t.Fatal(err)
	}
	return v
}

// nodeJobVersion is the Nomad job version of the instance's node job.
func nodeJobVersion(t testing.TB, short string) uint64 {
	t.Helper()
	job, _, err := nomadClient(t).Jobs().Info(naming.NodesJobID(short), nil)
	if err != nil {
		t.Fatal(err)
	}
	return *job.Version
}

// TestAStarterInstanceUpgradesToANewerMinorUnderWritesWithoutLosingACommit:
// a Starter instance provisioned on 15.18 stays on it when the broker starts
// offering 15.20; cf update-service --upgrade restarts its node on 15.20's
// binaries, on the same data, through the same DATABASE_URL, and no commit
// the writer saw acknowledged is lost. A version not offered and a downgrade
// are 422 with the reason and change nothing.
func TestAStarterInstanceUpgradesToANewerMinorUnderWritesWithoutLosingACommit(t *testing.T) {
	upgradeUnderWrites(t, "postgresql-starter-512", 3*time.Minute, false)
}

// TestASandboxInstanceUpgradesLikeAStarterOne: a Sandbox is a single node
// too, without WAL archiving: the same restart on the new binaries. Its
// upgrade is the dashboard's one click (the management API's POST
// upgrade), checked against the summary's upgrades first.
func TestASandboxInstanceUpgradesLikeAStarterOne(t *testing.T) {
	upgradeUnderWrites(t, "postgresql-sandbox", 3*time.Minute, true)
}

// TestABusinessInstanceRollsToANewerMinorUnderWritesWithoutLosingACommit:
// the same on a Business cluster, which rolls (the standby first, one
// switchover, then the former leader): every member ends on 15.20, and the
// read-only URL (a standby) too.
func TestABusinessInstanceRollsToANewerMinorUnderWritesWithoutLosingACommit(t *testing.T) {
	creds := upgradeUnderWrites(t, businessPlan, 5*time.Minute, false)
	readOnlyURI, _ := creds["read_only_uri"].(string)
	if readOnlyURI == "" {
		t.Fatal("Business credentials have no read_only_uri")
	}
	if v := serverVersion(t, readOnlyURI); !strings.HasPrefix(v, "15.20 ") {
		t.Fatalf("after: a standby's server_version (read_only_uri) %q, want 15.20", v)
	}
}

// upgradeUnderWrites provisions an instance on plan with a broker offering
// 15.18 only, offers 15.20 too, checks the refusals change nothing, upgrades
// it to 15.20 under a writer, checks every acknowledged commit, the version
// served and GET instance, and returns the binding's credentials. With
// viaDashboard the upgrade is the management API's one click
// (checkOneClickUpgrades), else an OSB update with maintenance_info.
func upgradeUnderWrites(t *testing.T, plan string, limit time.Duration, viaDashboard bool) map[string]any {
	both := offeredVersions(t)
	b := newBroker(t, "PGBROKER_POSTGRES_VERSIONS="+debian15)
	c := b.client()
	id := uuid.NewString()
	short := naming.ShortID(id)
	provisionWithin(t, c, id, plan, limit)
	t.Cleanup(func() { deprovision(t, c, id, plan) })
	creds := bind(t, c, id, uuid.NewString(), plan, nil)
	databaseURL := creds["DATABASE_URL"].(string)
	createAcks(t, databaseURL)
	if v := serverVersion(t, databaseURL); !strings.HasPrefix(v, "15.18 ") {
		t.Fatalf("before: server_version %q, want 15.18", v)
	}

	b.restartWith("PGBROKER_POSTGRES_VERSIONS", both)
	c = b.client()
	if a := instanceAttributes(t, b, id); a["postgres_version"] != "15.18" || a["upgrade_available"] != "15.20" {
		t.Fatalf("GET instance on a broker offering 15.20: %v, want postgres_version 15.18, upgrade_available 15.20", a)
	}
	if _, body := b.raw(http.MethodGet, "/v2/catalog", "", nil); !strings.Contains(body, `"version":"15.20.0"`) {
		t.Fatalf("catalog does not name 15.20.0 in maintenance_info: %s", tail(body, 5))
	}

	jobVersion := nodeJobVersion(t, short)
	for version, says := range map[string]string{"15.19.0": "not offered", "14.9.0": "only go forward"} {
		status, body := requestUpgrade(b, id, version)
		if status != http.StatusUnprocessableEntity || !strings.Contains(body, "MaintenanceInfoConflict") || !strings.Contains(body, says) {
			t.Fatalf("upgrade to %s: %d %s, want 422 MaintenanceInfoConflict saying %q", version, status, body, says)
		}
	}
	if v := nodeJobVersion(t, short); v != jobVersion {
		t.Fatalf("a refused upgrade re-registered the node job (version %d, was %d)", v, jobVersion)
	}

	w := startWriter(t, databaseURL)
	w.waitAcks(t, 20, time.Minute)
	w.resetGap()
	started := time.Now()
	var status int
	var body string
	if viaDashboard {
		status, body = checkOneClickUpgrades(t, b, id, both)
	} else {
		status, body = requestUpgrade(b, id, "15.20.0")
	}
	var accepted struct {
		Operation string `json:"operation"`
	}
	if err := json.Unmarshal([]byte(body), &accepted); err != nil || status != http.StatusAccepted || accepted.Operation == "" {
		t.Fatalf("upgrade to 15.20.0: %d %s, want 202 with an operation", status, body)
	}
	op := osb.OperationKey(accepted.Operation)
	waitOperation(t, c, id, &op, limit)
	took := time.Since(started)
	before := w.acked()
	w.waitAcks(t, before+20, 2*time.Minute)
	acked, gap := w.stop()
	t.Logf("minor upgrade 15.18 -> 15.20 on %s: operation %.1f s, longest gap between acknowledged commits %.2f s, %d commits acknowledged, pauses %v",
		plan, took.Seconds(), gap.Seconds(), len(acked), w.pauses)
	checkAcked(t, databaseURL, acked)

	if v := serverVersion(t, databaseURL); !strings.HasPrefix(v, "15.20 ") {
		t.Fatalf("after: server_version %q through the same DATABASE_URL, want 15.20", v)
	}
	if a := instanceAttributes(t, b, id); a["postgres_version"] != "15.20" || a["upgrade_available"] != "" {
		t.Fatalf("GET instance after the upgrade: %v, want postgres_version 15.20 and no upgrade available", a)
	}
	if offers := summaryUpgrades(t, b, id); viaDashboard && strings.Contains(both, "18.6=") && (len(offers) != 1 || offers[0].Version != "18.6" || offers[0].Blocked != "") {
		t.Fatalf("summary's upgrades on 15.20: %+v, want 18.6 alone, not blocked", offers)
	}
	jobVersion = nodeJobVersion(t, short)
	status, body = requestUpgrade(b, id, "15.18.0")
	if status != http.StatusUnprocessableEntity || !strings.Contains(body, "cannot go to 15.18") {
		t.Fatalf("downgrade to 15.18.0: %d %s, want 422 with the reason", status, body)
	}
	if v := nodeJobVersion(t, short); v != jobVersion || !strings.HasPrefix(serverVersion(t, databaseURL), "15.20 ") {
		t.Fatalf("a refused downgrade changed the instance (node job version %d, was %d)", v, jobVersion)
	}
	return creds
}

// upgradeOffer is one of the management API summary's upgrades.
type upgradeOffer struct {
	Version, Kind, Effect, Blocked string
}

// summaryUpgrades is GET /api/instances/{id}'s upgrades.
func summaryUpgrades(t *testing.T, b *broker, id string) []upgradeOffer {
	t.Helper()
	var summary struct {
		Upgrades []upgradeOffer `json:"upgrades"`
	}
	if status, body := b.apiCall(t, http.MethodGet, "/api/instances/"+id, "", &summary); status != http.StatusOK {
		t.Fatalf("summary: %d %s", status, body)
	}
	return summary.Upgrades
}

// checkOneClickUpgrades checks the summary's upgrades of instance id on
// 15.18 with a broker offering both (15.20, and 18.6 when built): 15.20 a
// minor one, 18.6 a major one blocked until 15.20; that a major not
// offered and the blocked one are 422 and record nothing; then asks for
// 15.20 through POST upgrade and returns its answer.
func checkOneClickUpgrades(t *testing.T, b *broker, id, both string) (int, string) {
	t.Helper()
	offers := summaryUpgrades(t, b, id)
	if len(offers) == 0 || offers[0].Version != "15.20" || offers[0].Kind != "minor" || offers[0].Blocked != "" || offers[0].Effect == "" {
		t.Fatalf("summary's upgrades on 15.18: %+v, want 15.20 first, minor, not blocked, with its effect", offers)
	}
	if strings.Contains(both, "18.6=") {
		if len(offers) != 2 || offers[1].Version != "18.6" || offers[1].Kind != "major" || !strings.Contains(offers[1].Blocked, "upgrade it to 15.20") {
			t.Fatalf("summary's upgrades on 15.18: %+v, want 18.6 second, major, blocked until 15.20", offers)
		}
	}
	refusals := map[string]string{"17": "UpgradeNotOffered", "15.18": "UpgradeNotOffered"}
	if strings.Contains(both, "18.6=") {
		refusals["18"] = "UpgradeNotPossible"
	}
	for version, rule := range refusals {
		status, body := b.raw(http.MethodPost, "/api/instances/"+id+"/upgrade", `{"postgresql_version":"`+version+`"}`, nil)
		if status != http.StatusUnprocessableEntity || !strings.Contains(body, rule) || !strings.Contains(body, "postgresql_version") {
			t.Fatalf("one-click upgrade to %s: %d %s, want 422 %s naming postgresql_version", version, status, body, rule)
		}
	}
	if a := instanceAttributes(t, b, id); a["postgres_version"] != "15.18" {
		t.Fatalf("after refused one-click upgrades: %v, want postgres_version 15.18", a)
	}
	return b.raw(http.MethodPost, "/api/instances/"+id+"/upgrade", `{"postgresql_version":"15.20"}`, nil)
}
