package reconcile

import (
	"slices"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/pgbroker/pgbroker/naming"
)

// TestPassReportsAnAllocationThatStaysDownWithoutRegisteringAnything: a
// registered job whose group has no running allocation is Nomad's to
// restart; the loop says "degraded: node-0 not running" (and counts it),
// registers nothing, and says "running" once it runs again.
func TestPassReportsAnAllocationThatStaysDownWithoutRegisteringAnything(t *testing.T) {
	for _, c := range []struct {
		plan, job, group, want string
	}{
		{starter, "nodes", "node-0", "degraded: node-0 not running"},
		{sandbox, "gateways", gatewayGroup, "degraded: gateway not running"},
		{business, "nodes", "node-1", "degraded: node-1 not running"},
		{business, "gateways", gatewayGroup, "degraded: gateway 0 of 2 running"},
	} {
		t.Run(c.plan+" "+c.group, func(t *testing.T) {
			w := newWorld()
			inst := w.healthy("inst-1", c.plan)
			jobID := naming.NodesJobID(inst.ShortID)
			if c.job == "gateways" {
				jobID = naming.GatewaysJobID(inst.ShortID)
			}
			w.down[jobID+"/"+c.group] = true
			r := w.reconciler(t)
			passes(t, r, 2)
			if len(w.calls) != 0 {
				t.Errorf("acted on an allocation Nomad restarts: %q", w.calls)
			}
			if got := w.statuses[inst.ID]; !slices.Equal(got, []string{c.want, c.want}) {
				t.Errorf("statuses = %q; want %q twice", got, c.want)
			}
			if n := testutil.ToFloat64(r.Metrics().degraded); n != 1 {
				t.Errorf("degraded gauge = %v; want 1", n)
			}
			delete(w.down, jobID+"/"+c.group)
			passes(t, r, 1)
			if got := w.statuses[inst.ID]; got[len(got)-1] != StatusRunning {
				t.Errorf("statuses = %q; want running once it runs", got)
			}
		})
	}
}

// TestPassSaysEveryRepairBeforeTheFirstOneEnds: with three instances to
// repair in one pass, the two waiting behind the first already say
// "degraded: ... (repair queued)" while the first is repaired, and each
// ends "running".
func TestPassSaysEveryRepairBeforeTheFirstOneEnds(t *testing.T) {
	w := newWorld()
	var ids []string
	for _, id := range []string{"inst-1", "inst-2", "inst-3"} {
		w.lose(w.healthy(id, starter))
		ids = append(ids, id)
	}
	passes(t, w.reconciler(t), 1)
	if len(w.seen) != 3 {
		t.Fatalf("%d provisions; want 3", len(w.seen))
	}
	first := w.seen[0]
	if !strings.HasPrefix(first[ids[0]], StatusRepairing+": ") {
		t.Errorf("the first instance during its own repair: %q; want repairing", first[ids[0]])
	}
	for _, id := range ids[1:] {
		if got := first[id]; !strings.HasPrefix(got, "degraded: ") || !strings.HasSuffix(got, statusQueued) {
			t.Errorf("%s during the first repair: %q; want degraded: ... (repair queued)", id, got)
		}
	}
	for _, id := range ids {
		if got := w.statuses[id]; got[len(got)-1] != StatusRunning {
			t.Errorf("%s: statuses %q; want running at the end", id, got)
		}
	}
}
