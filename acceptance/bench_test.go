package acceptance

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	osb "sigs.k8s.io/go-open-service-broker-client/v2"
)

const benchRuns = 5

// BenchmarkStarterProvisionVsInitdb measures, in one run, Starter
// provisioning through pgbroker (PUT to last_operation "succeeded", then bind
// and a successful SELECT 1 through the returned DATABASE_URL) against a
// hand-run initdb + pg_ctl start + SELECT 1 on this machine, 5 runs each, and
// reports both medians and their ratio (issue: 3 or less, goal 2).
// Run with -benchtime=1x: each iteration is the whole comparison.
func BenchmarkStarterProvisionVsInitdb(b *testing.B) {
	for i := 0; i < b.N; i++ {
		br := newBroker(b)
		c := br.client()
		var broker, manual, manualNoSync []time.Duration
		for r := 0; r < benchRuns; r++ {
			manual = append(manual, handInitdb(b, r))
			manualNoSync = append(manualNoSync, handInitdb(b, r, "--no-sync"))
			broker = append(broker, brokerProvision(b, c))
		}
		mb, mm, mn := median(broker), median(manual), median(manualNoSync)
		ratio, ratioNoSync := mb.Seconds()/mm.Seconds(), mb.Seconds()/mn.Seconds()
		b.ReportMetric(mb.Seconds(), "provision_s")
		b.ReportMetric(mm.Seconds(), "initdb_start_s")
		b.ReportMetric(mn.Seconds(), "initdb_nosync_start_s")
		b.ReportMetric(ratio, "ratio")
		b.ReportMetric(ratioNoSync, "ratio_nosync")
		fmt.Printf("\nStarter provisioning (PUT -> succeeded -> bind -> SELECT 1), %d runs each, same run\n", benchRuns)
		fmt.Printf("  pgbroker                     median %6.2f s  runs %v\n", mb.Seconds(), secs(broker))
		fmt.Printf("  initdb + start (by hand)     median %6.2f s  runs %v  ratio %.2f (needed <= 3, goal 2)\n", mm.Seconds(), secs(manual), ratio)
		fmt.Printf("  initdb --no-sync + start     median %6.2f s  runs %v  ratio %.2f (what the node job runs)\n\n", mn.Seconds(), secs(manualNoSync), ratioNoSync)
	}
}

func brokerProvision(b *testing.B, c osb.Client) time.Duration {
	id := uuid.NewString()
	start := time.Now()
	resp, err := c.ProvisionInstance(&osb.ProvisionRequest{
		InstanceID: id, AcceptsIncomplete: true, ServiceID: serviceID, PlanID: "postgresql-starter-512",
		OrganizationGUID: "org-bench", SpaceGUID: "space-bench",
	})
	if err != nil {
		b.Fatal(err)
	}
	waitOperation(b, c, id, resp.OperationKey, 3*time.Minute)
	creds, err := c.Bind(&osb.BindRequest{InstanceID: id, BindingID: uuid.NewString(), ServiceID: serviceID, PlanID: "postgresql-starter-512"})
	if err != nil {
		b.Fatal(err)
	}
	rememberCA(b, creds.Credentials)
	benchExec(b, creds.Credentials["DATABASE_URL"].(string), "SELECT 1")
	took := time.Since(start)
	deprovision(b, c, id, "postgresql-starter-512")
	return took
}

// handInitdb times what an operator does by hand: initdb (with
// initdbFlags), pg_ctl start -w, and a first SELECT 1 over TCP. Cleanup is
// not timed.
func handInitdb(b *testing.B, run int, initdbFlags ...string) time.Duration {
	dir := postgresDir(b, "pgbroker-bench-initdb-")
	pgdata := filepath.Join(dir, "data")
	port := strconv.Itoa(39000 + run)
	bin := "/usr/lib/postgresql/15/bin/"
	start := time.Now()
	asPostgres(b, append([]string{bin + "initdb", "-D", pgdata, "-U", "postgres", "--auth=trust"}, initdbFlags...)...)
	asPostgres(b, bin+"pg_ctl", "-D", pgdata, "-w", "-l", filepath.Join(dir, "log"), "-o", "-p "+port+" -k "+dir+" -c listen_addresses=127.0.0.1", "start")
	benchExec(b, "postgres://postgres@127.0.0.1:"+port+"/postgres?sslmode=disable", "SELECT 1")
	took := time.Since(start)
	asPostgres(b, bin+"pg_ctl", "-D", pgdata, "-m", "immediate", "stop")
	return took
}

// postgresDir makes a directory user postgres may write (mode 0777), removed
// when the benchmark ends.
func postgresDir(b *testing.B, prefix string) string {
	dir, err := os.MkdirTemp("", prefix)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { os.RemoveAll(dir) })
	if err := os.Chmod(dir, 0o777); err != nil {
		b.Fatal(err)
	}
	return dir
}

func asPostgres(b *testing.B, args ...string) {
	cmd := exec.Command("runuser", append([]string{"-u", "postgres", "--"}, args...)...)
	if out, err := cmd.CombinedOutput(); err != nil {
		b.Fatalf("%v: %v\n%s", args, err, out)
	}
}

// benchExec runs sql through url (the form an application uses) and fails
// the benchmark when it errs or, for a query, returns no row.
func benchExec(b *testing.B, url, sql string) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, withRootCert(url))
	if err != nil {
		b.Fatalf("connect: %v", err)
	}
	defer conn.Close(ctx)
	tag, err := conn.Exec(ctx, sql)
	if err != nil {
		b.Fatalf("%s: %v", sql, err)
	}
	if tag.Select() && tag.RowsAffected() == 0 {
		b.Fatalf("%s: no row", sql)
	}
}

func median(d []time.Duration) time.Duration {
	s := append([]time.Duration(nil), d...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	return s[len(s)/2]
}

func secs(d []time.Duration) []string {
	out := make([]string, len(d))
	for i, v := range d {
		out[i] = fmt.Sprintf("%.2f", v.Seconds())
	}
	return out
}
