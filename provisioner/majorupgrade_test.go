package provisioner

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
)

// Unit tests of the major upgrade's orchestration (UpgradeMajor) against
// the fakes of fake_test.go, whose upgradePhase plays upgrade.nomad.hcl.

// on1520 returns a world holding a Starter instance provisioned on 15.20
// and the same instance on 18.6, the log emptied.
func on1520(t *testing.T) (*world, Instance, Instance) {
	t.Helper()
	w := newWorld()
	in := testInstance()
	in.PostgresVersion = "15.20"
	placed, err := w.provisioner(t).Provision(context.Background(), in, starterSize(512), nop)
	if err != nil {
		t.Fatalf("provision: %v", err)
	}
	in.NodeID = placed.NodeID
	w.resetLog()
	to := in
	to.PostgresVersion = "18.6"
	return w, in, to
}

// upgradeSteps are the log lines of the upgrade's steps: the phases, the
// node job's stop and registrations.
func upgradeSteps(w *world) []string {
	return slices.DeleteFunc(w.significant("upgrade", "stop-job", "register"), func(l string) bool {
		return strings.HasPrefix(l, "register pg-"+testShort+"-upgrade-")
	})
}

// nodeBinDir is the bin directory the registered node job runs, with its
// stop flag.
func nodeBinDir(t *testing.T, w *world) string {
	t.Helper()
	job := w.jobs["pg-"+testShort+"-nodes"]
	return fmt.Sprintf("%v stop=%v", groupVar(job.TaskGroups[0], "postgres_bin_dir"), job.Stop != nil && *job.Stop)
}

func TestAMajorUpgradeChecksStopsUpgradesStartsAndFinishesInThatOrder(t *testing.T) {
	w, in, to := on1520(t)
	if err := w.provisioner(t).UpgradeMajor(context.Background(), in, to, starterSize(512), "op-1", nop); err != nil {
		t.Fatal(err)
	}
	want := []string{
		"upgrade check",
		"stop-job pg-" + testShort + "-nodes",
		"upgrade upgrade: pg_upgrade to 18",
		"register pg-" + testShort + "-nodes v1",
		"upgrade finish",
	}
	if got := upgradeSteps(w); !slices.Equal(got, want) {
		t.Fatalf("steps:\n%q\nwant\n%q", got, want)
	}
	if got := nodeBinDir(t, w); got != "/pg/18.6/bin stop=false" {
		t.Fatalf("node job on %s, want 18.6's binaries, running", got)
	}
}

func TestARefusedCheckStopsNothing(t *testing.T) {
	w, in, to := on1520(t)
	w.failing["check"] = true
	err := w.provisioner(t).UpgradeMajor(context.Background(), in, to, starterSize(512), "op-1", nop)
	var refused *UpgradeRefusedError
	if !errors.As(err, &refused) || !refused.Checked {
		t.Fatalf("error %v, want an UpgradeRefusedError of the check", err)
	}
	if got := upgradeSteps(w); !slices.Equal(got, []string{"upgrade check: failed"}) {
		t.Fatalf("steps %q, want the check alone", got)
	}
	if got := nodeBinDir(t, w); got != "/pg/15.20/bin stop=false" {
		t.Fatalf("node job on %s, want 15.20's binaries, running", got)
	}
}

func TestAFailedPgUpgradeStartsTheOldClusterAgain(t *testing.T) {
	w, in, to := on1520(t)
	w.failing["upgrade"] = true
	err := w.provisioner(t).UpgradeMajor(context.Background(), in, to, starterSize(512), "op-1", nop)
	var refused *UpgradeRefusedError
	if !errors.As(err, &refused) || refused.Checked {
		t.Fatalf("error %v, want an UpgradeRefusedError of pg_upgrade", err)
	}
	if got := nodeBinDir(t, w); got != "/pg/15.20/bin stop=false" || len(w.liveGroups(testShort)) != 1 {
		t.Fatalf("node job on %s with %v running, want 15.20's binaries, running", got, w.liveGroups(testShort))
	}
	if w.upgrades != 0 {
		t.Fatalf("%d pg_upgrade runs changed the data", w.upgrades)
	}
}

// TestAMajorUpgradeCrashedBeforeAnyCallFinishesWithOnePgUpgrade: the
// broker killed before each call in turn; running the upgrade again
// finishes it: the node on 18.6's binaries, running, pg_upgrade run once,
// never on data a running node uses, the finish done.
func TestAMajorUpgradeCrashedBeforeAnyCallFinishesWithOnePgUpgrade(t *testing.T) {
	w, in, to := on1520(t)
	if err := w.provisioner(t).UpgradeMajor(context.Background(), in, to, starterSize(512), "op-1", nop); err != nil {
		t.Fatal(err)
	}
	calls := w.calls
	if calls < 20 {
		t.Fatalf("the upgrade made %d calls: the fakes were not reached", calls)
	}
	for k := 1; k <= calls; k++ {
		w, in, to := on1520(t)
		w.calls, w.crashAt = 0, k
		if _, err := runUntil(-1, func() error {
			return w.provisioner(t).UpgradeMajor(context.Background(), in, to, starterSize(512), "op-1", nop)
		}); err != nil {
			t.Fatalf("crash before call %d of %d: %v", k, calls, err)
		}
		w.crashAt = 0
		if err := w.provisioner(t).UpgradeMajor(context.Background(), in, to, starterSize(512), "op-1", nop); err != nil {
			t.Fatalf("crash before call %d of %d, then again: %v", k, calls, err)
		}
		steps := upgradeSteps(w)
		if got := nodeBinDir(t, w); got != "/pg/18.6/bin stop=false" || len(w.liveGroups(testShort)) != 1 || w.upgrades != 1 ||
			steps[len(steps)-1] != "upgrade finish" {
			t.Fatalf("crash before call %d of %d: node job on %s, %v running, %d pg_upgrade runs; steps %q", k, calls, got, w.liveGroups(testShort), w.upgrades, steps)
		}
		for _, l := range w.significant() {
			t.Fatalf("crash before call %d of %d: %s", k, calls, l)
		}
	}
}
