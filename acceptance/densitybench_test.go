package acceptance

import (
	"fmt"
	"testing"
	"time"
)

// densityInstances is how many idle Sandbox instances the density figure
// runs on one machine (issue 18: fifty under 10% of one core, checks
// included).
const densityInstances = 50

// BenchmarkFiftyIdleSandboxes provisions 50 Sandbox instances at once,
// prints the time until all succeeded, then measures the stack's CPU with
// the 50 idle against the same stack and broker with none, in the same run,
// and prints the difference per instance in percent of one core.
//
// The stack's CPU is read from a cgroup v2 that the benchmark moves the
// stack's processes into (Nomad agents and executors, PostgreSQL, HAProxy,
// etcd, the broker); what they start later inherits it, and the cgroup
// counts processes that have already exited too (autovacuum workers,
// backends of health checks). Other work on the machine does not count.
// Without cgroup v2 it falls back to the whole machine's busy time from
// /proc/stat, and says so. Run with -benchtime=1x.
func BenchmarkFiftyIdleSandboxes(b *testing.B) {
	for i := 0; i < b.N; i++ {
		br := newTinyBroker(b, densityInstances)
		meter := newStackMeter(b)
		const window = 60 * time.Second
		idle := meter.busyCores(b, window)
		ids, took := provisionAtOnce(b, br, densityInstances, 15*time.Minute)
		// Idle means after the provisions' own work: their checkpoints
		// (checkpoint_timeout, 5 min) and first autovacuum analyses.
		time.Sleep(6 * time.Minute)
		meter.adopt(b) // processes not started by an adopted one
		loaded := meter.busyCores(b, window)
		perInstance := (loaded - idle) / densityInstances
		b.ReportMetric(took.Seconds(), "all_succeeded_s")
		b.ReportMetric(perInstance*100, "idle_cpu_pct_per_instance")
		fmt.Printf("\n%d Sandbox provisions at once: all succeeded %.1f s after the last 202\n", densityInstances, took.Seconds())
		fmt.Printf("Idle CPU, %s, busy share of one core over %s, same run:\n", meter.what(), window)
		fmt.Printf("  stack and broker, no instance   %6.2f %%\n", idle*100)
		fmt.Printf("  with %d idle Sandboxes          %6.2f %%  (+%.2f %%: target under 10 %% for %d)\n",
			densityInstances, loaded*100, (loaded-idle)*100, densityInstances)
		fmt.Printf("  per idle instance               %6.3f %% of one core\n\n", perInstance*100)
		deprovisionAtOnce(b, br, ids)
	}
}
