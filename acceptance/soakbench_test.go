package acceptance

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/pgbroker/pgbroker/naming"
)

// BenchmarkBusinessNoFalseFailoverUnderLoad runs a Business instance with
// the default Patroni ttl (patroniTTL) for PGBROKER_SOAK (default 10m)
// while every core is saturated by busy loops and the disk the stack runs
// on by fsynced writes, with a writer committing one row per transaction
// through DATABASE_URL: it counts the leader changes (the leader's
// timeline in Patroni's /cluster, leaderTimeline, which each promotion
// moves on) and fails if there was one, or if an acknowledged commit is
// missing. It prints the longest commit gap.
// Issue 16: a shorter ttl must not fail over a leader that is only slow.
// Run with -benchtime=1x.
func BenchmarkBusinessNoFalseFailoverUnderLoad(b *testing.B) {
	soak := 10 * time.Minute
	if v := os.Getenv("PGBROKER_SOAK"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil {
			b.Fatalf("PGBROKER_SOAK: %v", err)
		}
		soak = d
	}
	for i := 0; i < b.N; i++ {
		br := newBroker(b)
		c := br.client()
		id := uuid.NewString()
		provisionWithin(b, c, id, businessPlan, 5*time.Minute)
		short := naming.ShortID(id)
		databaseURL := bind(b, c, id, uuid.NewString(), businessPlan, nil)["DATABASE_URL"].(string)
		createAcks(b, databaseURL)
		waitClusterHealthy(b, short, 3*time.Minute)
		_, before := leaderTimeline(b, short)

		w := startWriter(b, databaseURL)
		stopLoad := saturate(b, filepath.Dir(dataRoot))
		start := time.Now()
		time.Sleep(soak)
		stopLoad()
		acked, gap := w.stop()
		checkAcked(b, databaseURL, acked)
		_, after := leaderTimeline(b, short)
		changes := after - before
		b.ReportMetric(float64(changes), "leader_changes")
		b.ReportMetric(gap.Seconds(), "longest_gap_s")
		fmt.Printf("\nBusiness under load (%d busy loops on %d cores, fsynced writes), Patroni ttl %.0f s, %s\n",
			runtime.NumCPU(), runtime.NumCPU(), patroniTTL.Seconds(), time.Since(start).Round(time.Second))
		fmt.Printf("  unplanned leader changes %d (timeline %d -> %d; needed: 0)  commits %d, all present  longest commit gap %.2f s\n\n",
			changes, before, after, len(acked), gap.Seconds())
		if changes != 0 {
			b.Errorf("%d leader change(s) under load with nothing failed", changes)
		}
		deprovision(b, c, id, businessPlan)
	}
}

// saturate starts one busy loop per core and a loop of fsynced 256 MiB
// writes in dir, and returns the function that stops them.
func saturate(tb testing.TB, dir string) func() {
	tb.Helper()
	file := filepath.Join(dir, "soak-io."+strconv.Itoa(os.Getpid()))
	var cmds []*exec.Cmd
	for range runtime.NumCPU() {
		cmds = append(cmds, exec.Command("sh", "-c", "while :; do :; done"))
	}
	cmds = append(cmds, exec.Command("sh", "-c", `while :; do dd if=/dev/zero of="$0" bs=1M count=256 conv=fsync status=none; done`, file))
	for _, cmd := range cmds {
		cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
		if err := cmd.Start(); err != nil {
			tb.Fatal(err)
		}
	}
	return func() {
		for _, cmd := range cmds {
			_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
			_ = cmd.Wait()
		}
		_ = os.Remove(file)
	}
}
