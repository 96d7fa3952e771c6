package reconcile

import (
	"fmt"
	"strings"
)

// Finding is what Nomad lacks of one instance, compared with the state
// database.
type Finding struct {
	NodesJob    string // "" when registered and running; "missing" (Jobs().Info 404) or "stopped" (Job.Stop)
	GatewaysJob string // likewise for the gateway job
	// Variables are the paths of the instance's Variables kept sealed in
	// the state database (store.SealedVariables.Paths) that Nomad lacks
	// (Variables().PrefixList).
	Variables []string
	// NodesVariableLost: the nodes Variable (admin and replication
	// passwords) is missing from Nomad and has no sealed copy either, so
	// running the node job again would mint passwords the data directory
	// does not know.
	NodesVariableLost bool
	// Drifted names the registered jobs ("nodes", "gateways") whose
	// definition differs from the one the broker would register now
	// (Nomad's plan of the broker's definition has a diff).
	Drifted []string
	// DriftUnplaceable: Nomad's plan could not place the broker's
	// definition of a drifted job (FailedTGAllocs), so registering it could
	// stop a running allocation for one that never starts.
	DriftUnplaceable bool
	// NodesUnplaced, for a Business instance whose node job Nomad lacks or
	// holds stopped, says why the client holding each node's data is not
	// known for sure ("" when it is): registering the job again could then
	// start a node on another node's data, or anew beside its own.
	NodesUnplaced string
	// NotRunning names the task groups of registered jobs short of running
	// allocations ("node-1 not running", "gateway 1 of 2 running"). Nomad
	// restarts and reschedules those itself: the loop reports them.
	NotRunning []string
	// Interrupted: the instance's recorded status is still "repairing: ..."
	// when this broker holds the reconcile lock, so the broker that started
	// the repair stopped before its end (killed, say); the repair is run
	// again to its end (every step is idempotent).
	Interrupted bool
}

// JobsMissing reports whether a job must be registered again.
func (f Finding) JobsMissing() bool { return f.NodesJob != "" || f.GatewaysJob != "" }

// Clean reports whether Nomad lacks nothing and holds the broker's
// definition of each job.
func (f Finding) Clean() bool {
	return !f.JobsMissing() && len(f.Variables) == 0 && !f.NodesVariableLost && len(f.Drifted) == 0 && !f.Interrupted && len(f.NotRunning) == 0
}

// Reason is the metrics label of a repair of f: "lost" when Nomad lacks a
// job or a Variable, "drift" when it holds a job whose definition drifted,
// else "interrupted" (only a repair to finish).
func (f Finding) Reason() string {
	switch {
	case f.JobsMissing() || len(f.Variables) > 0 || f.NodesVariableLost:
		return "lost"
	case len(f.Drifted) > 0:
		return "drift"
	}
	return "interrupted"
}

// String says what is missing or differs: "nodes job missing, gateways
// job stopped, 2 Variables missing", "nodes job definition drifted".
func (f Finding) String() string {
	var parts []string
	if f.NodesJob != "" {
		parts = append(parts, "nodes job "+f.NodesJob)
	}
	if f.GatewaysJob != "" {
		parts = append(parts, "gateways job "+f.GatewaysJob)
	}
	if len(f.Variables) > 0 {
		parts = append(parts, fmt.Sprintf("%d Variables missing", len(f.Variables)))
	}
	if f.NodesVariableLost {
		parts = append(parts, "nodes Variable missing with no sealed copy")
	}
	for _, job := range f.Drifted {
		parts = append(parts, job+" job definition drifted")
	}
	if f.DriftUnplaceable {
		parts = append(parts, "the broker's definition cannot be placed")
	}
	parts = append(parts, f.NotRunning...)
	if f.Interrupted && len(parts) == 0 {
		parts = append(parts, "a repair interrupted")
	}
	if len(parts) == 0 {
		return "nothing missing"
	}
	return strings.Join(parts, ", ")
}

// Action is what the loop does about one instance.
type Action int

const (
	// Leave: nothing missing, or nothing the loop may do.
	Leave Action = iota
	// RestoreVariables: only Variables are missing; put them back from
	// their sealed copies.
	RestoreVariables
	// Repair: put the Variables back, then register the jobs again the
	// way provisioning does (same client, gateway port, data directory):
	// for jobs missing, stopped, or whose definition drifted.
	Repair
)

// Status values shown in GET instance (metadata attribute "status").
const (
	StatusRunning   = "running"
	StatusRepairing = "repairing"
)

// Decide returns what to do about an instance whose plan has standbys (ha)
// or not, whose data lives on Nomad client nodeID ("" when none was
// recorded; a single node's), given f, and the status it has once that is
// done. A Business instance is repaired like a single node when the client
// of each node's data is known (f.NodesUnplaced ""), or needs no placing.
func Decide(ha bool, nodeID string, f Finding) (Action, string) {
	switch {
	case f.Clean():
		return Leave, StatusRunning
	case f.NodesVariableLost, f.DriftUnplaceable:
		return Leave, "degraded: " + f.String() + " (needs an operator)"
	case !f.JobsMissing() && len(f.Drifted) == 0 && !f.Interrupted && len(f.Variables) == 0:
		// Only allocations down: Nomad's to restart; reported.
		return Leave, "degraded: " + f.String()
	case !f.JobsMissing() && len(f.Drifted) == 0 && !f.Interrupted:
		return RestoreVariables, StatusRunning
	case ha && f.NodesJob != "" && f.NodesUnplaced != "":
		return Leave, "degraded: " + f.String() + ", and " + f.NodesUnplaced + " (Business: needs an operator)"
	case !ha && nodeID == "":
		return Leave, "degraded: " + f.String() + ", and no Nomad client is recorded as holding its data (needs an operator)"
	}
	return Repair, StatusRunning
}
