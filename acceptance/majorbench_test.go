package acceptance

import (
	"fmt"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	osb "sigs.k8s.io/go-open-service-broker-client/v2"

	"github.com/pgbroker/pgbroker/pgversion"
)

// majorBenchRows is how many rows each instance of the major upgrade bench
// holds (with a pgcrypto digest column: about 20 MB), in the broker's instance and
// in the hand-run cluster alike.
const majorBenchRows = 200000

// majorBenchSchema is the data of both sides of BenchmarkMajorUpgradeDowntime:
// a table with a pgcrypto column, a sequence and a view, as
// TestAStarterUpgradesToPostgreSQL18KeepingEverything. Both sides have the
// extensions pgcrypto and pg_stat_statements (majorBenchExtensions).
var majorBenchExtensions = []string{"pg_stat_statements", "pgcrypto"}
var majorBenchSchema = []string{
	`CREATE TABLE items (id bigserial PRIMARY KEY, body text NOT NULL, secret bytea)`,
	`INSERT INTO items (body, secret) SELECT 'body ' || g, digest('body ' || g, 'sha256') FROM generate_series(1, ` + strconv.Itoa(majorBenchRows) + `) g`,
	`CREATE SEQUENCE tickets START 100`,
	`CREATE VIEW item_count AS SELECT count(*)::int AS n FROM items`,
}

// BenchmarkMajorUpgradeDowntime: the downtime of a Starter's major upgrade
// 15.20 -> 18.6 (update parameter postgresql_version "18") as its
// application sees it, the longest gap between acknowledged commits
// through DATABASE_URL, with every acknowledged commit checked after. The
// reference, same run, same data: an operator's pg_upgrade --link by hand
// on this machine with the same binaries, timed from the stop of the old
// cluster to the first SELECT 1 on the new one (the new cluster initdb'd
// before the stop, as the broker's check phase does; pg_attver dropped
// from the stopped cluster, as the broker must for 15.20: see
// nomad-jobs/upgrade.nomad.hcl). Also printed: the whole operation, PUT
// to succeeded. Source: issue 15 (make bench: the major-upgrade downtime
// beside a hand-run pg_upgrade --link).
func BenchmarkMajorUpgradeDowntime(b *testing.B) {
	for range b.N {
		versions := offered18(b)
		old, next := binDirOf(b, versions, "15.20"), binDirOf(b, versions, "18.6")
		br := newBroker(b)
		var gaps, ops, hand []time.Duration
		for run := range benchRuns {
			gap, op := brokerMajorUpgrade(b, br)
			gaps, ops = append(gaps, gap), append(ops, op)
			hand = append(hand, handMajorUpgrade(b, run, old, next))
		}
		b.ReportMetric(median(gaps).Seconds(), "major_upgrade_gap_median_s")
		b.ReportMetric(median(hand).Seconds(), "hand_pg_upgrade_median_s")
		fmt.Printf("\nMajor upgrade 15.20 -> 18.6 of a Starter with %d rows, same run\n", majorBenchRows)
		fmt.Printf("  write gap through DATABASE_URL      median %5.2f s  p95 %5.2f s  runs %v\n", median(gaps).Seconds(), p95(gaps).Seconds(), secs(gaps))
		fmt.Printf("  hand-run stop..pg_upgrade --link..start  median %5.2f s  p95 %5.2f s  runs %v  ratio %.2f\n", median(hand).Seconds(), p95(hand).Seconds(), secs(hand), median(gaps).Seconds()/median(hand).Seconds())
		fmt.Printf("  whole operation, update to succeeded  median %5.2f s  p95 %5.2f s  runs %v\n\n", median(ops).Seconds(), p95(ops).Seconds(), secs(ops))
	}
}

// binDirOf is the binary directory that versions (PGBROKER_POSTGRES_VERSIONS)
// gives version, read as the broker reads it (pgversion.ParseOffered).
func binDirOf(b *testing.B, versions, version string) string {
	offered, err := pgversion.ParseOffered(versions)
	if err != nil {
		b.Fatal(err)
	}
	v, err := pgversion.Parse(version)
	if err != nil {
		b.Fatal(err)
	}
	dir, ok := offered.BinDir(v)
	if !ok {
		b.Fatalf("PGBROKER_POSTGRES_VERSIONS %q has no %s", versions, version)
	}
	return dir
}

// brokerMajorUpgrade provisions a Starter (on the newest 15 offered) with
// majorBenchSchema, upgrades it to 18 under a writer and returns the
// longest write gap and the operation's time, then deprovisions it.
func brokerMajorUpgrade(b *testing.B, br *broker) (gap, op time.Duration) {
	const plan = "postgresql-starter-512"
	c := br.client()
	id := uuid.NewString()
	resp, err := c.ProvisionInstance(&osb.ProvisionRequest{InstanceID: id, AcceptsIncomplete: true, ServiceID: serviceID,
		PlanID: plan, OrganizationGUID: "org-bench", SpaceGUID: "space-bench", Parameters: map[string]any{"extensions": majorBenchExtensions}})
	if err != nil {
		b.Fatal(err)
	}
	waitOperation(b, c, id, resp.OperationKey, 3*time.Minute)
	databaseURL := bind(b, c, id, uuid.NewString(), plan, nil)["DATABASE_URL"].(string)
	for _, sql := range majorBenchSchema {
		benchExec(b, databaseURL, sql)
	}
	createAcks(b, databaseURL)
	gap = writeGap(b, databaseURL, func() {
		started := time.Now()
		status, body := requestMajorUpgrade(br, id, "", `{"postgresql_version":"18"}`)
		if state, desc := waitOperationOutcome(b, c, id, acceptedOperation(b, status, body), 10*time.Minute); state != osb.StateSucceeded {
			b.Fatalf("major upgrade: %s %q", state, desc)
		}
		op = time.Since(started)
	})
	if v := serverVersion(b, databaseURL); !strings.HasPrefix(v, "18.6") {
		b.Fatalf("after the upgrade: server_version %q, want 18.6", v)
	}
	deprovision(b, c, id, plan)
	return gap, op
}

// handMajorUpgrade makes a cluster with old's binaries holding
// majorBenchSchema and an empty one with next's (data checksums on both,
// as the broker's clusters), then times what an operator's pg_upgrade
// --link costs in downtime: stop, drop pg_attver, pg_upgrade --link,
// start, SELECT 1. Everything runs as postgres over a Unix socket only (a
// TCP port in the ephemeral range may be taken on this busy machine).
func handMajorUpgrade(b *testing.B, run int, old, next string) time.Duration {
	dir := postgresDir(b, "pgbroker-bench-pgupgrade-")
	oldData, newData := filepath.Join(dir, "old"), filepath.Join(dir, "new")
	port := strconv.Itoa(39200 + run)
	opts := "-p " + port + " -k " + dir + " -c listen_addresses='' -c shared_preload_libraries=pg_stat_statements"
	url := "postgres://postgres@/postgres?sslmode=disable&host=" + dir + "&port=" + port
	asPostgres(b, old+"/initdb", "-D", oldData, "-U", "postgres", "--auth=trust", "--data-checksums", "--no-sync")
	asPostgres(b, old+"/pg_ctl", "-D", oldData, "-w", "-l", filepath.Join(dir, "old.log"), "-o", opts, "start")
	for _, name := range majorBenchExtensions {
		benchExec(b, url, "CREATE EXTENSION "+name)
	}
	for _, sql := range majorBenchSchema {
		benchExec(b, url, sql)
	}
	asPostgres(b, next+"/initdb", "-D", newData, "-U", "postgres", "--auth=trust", "--data-checksums", "--no-sync")

	start := time.Now()
	asPostgres(b, old+"/pg_ctl", "-D", oldData, "-w", "-m", "fast", "stop")
	asPostgres(b, old+"/pg_ctl", "-D", oldData, "-w", "-l", filepath.Join(dir, "old.log"), "-o", "-p "+port+" -k "+dir+" -c listen_addresses=''", "start")
	for _, db := range []string{"postgres", "template1"} {
		asPostgres(b, old+"/psql", "-h", dir, "-p", port, "-U", "postgres", "-d", db, "-Xq", "-v", "ON_ERROR_STOP=1", "-c",
			`UPDATE pg_catalog.pg_attribute SET attoptions = nullif(array(SELECT o FROM unnest(attoptions) o WHERE o NOT LIKE 'pg\_attver=%'), '{}') WHERE attoptions::text LIKE '%pg\_attver=%'`)
	}
	asPostgres(b, old+"/pg_ctl", "-D", oldData, "-w", "-m", "fast", "stop")
	asPostgres(b, "sh", "-c", "cd "+dir+" && "+next+"/pg_upgrade --old-bindir="+old+" --new-bindir="+next+
		" --old-datadir="+oldData+" --new-datadir="+newData+" --username=postgres --socketdir="+dir+" --link >"+dir+"/pg_upgrade.out 2>&1")
	asPostgres(b, next+"/pg_ctl", "-D", newData, "-w", "-l", filepath.Join(dir, "new.log"), "-o", opts, "start")
	benchExec(b, url, "SELECT 1")
	took := time.Since(start)
	asPostgres(b, next+"/pg_ctl", "-D", newData, "-m", "immediate", "stop")
	return took
}
