package reconcile

import (
	"context"
	"strconv"
	"strings"

	"github.com/hashicorp/nomad/api"

	"github.com/pgbroker/pgbroker/catalog"
	"github.com/pgbroker/pgbroker/instances"
	"github.com/pgbroker/pgbroker/naming"
	"github.com/pgbroker/pgbroker/store"
)

// registered are an instance's jobs as Nomad holds them (Jobs().Info); nil
// when missing.
type registered struct {
	nodes, gateways *api.Job
}

// jobDrift is how one registered job differs from the broker's definition
// of it, as Nomad's plan of that definition says (nomad job plan -diff).
type jobDrift struct {
	job         string   // "nodes" or "gateways"
	fields      []string // what would change: "TaskGroup node-0/Task postgres/Resources/MemoryMB: 1024 → 512"
	unplaceable bool     // the plan could not place a task group of the definition (FailedTGAllocs)
}

// drift renders the broker's definition of the jobs of instance inst
// (what a provision registers now: a single node pinned to the recorded
// client, each Business node to its recorded client when the registered
// groups are pinned) and asks Nomad's plan
// whether registering it would change the registered jobs live. A node job
// registered by a point-in-time restore (Meta pgbroker_pitr_restore) is not
// compared: its restore settings are not the broker's to render again.
// Errors: Nomad's, or the definition cannot be rendered (no CA yet).
func (r *Reconciler) drift(ctx context.Context, inst store.Instance, plan catalog.Plan, live registered) ([]jobDrift, error) {
	// A single node is pinned to its recorded client (a provision pins it
	// once placed): a node job without the pin (registered by an earlier
	// broker) drifted, and its repair pins it; in place, unless it runs
	// away from its data, which the repair brings it back to.
	target := instances.Target(inst, plan)
	pin, err := r.gatewayPin(ctx, inst.ShortID, live.gateways)
	if err != nil {
		return nil, err
	}
	target.GatewayNodeID = pin
	if plan.HA() {
		target.NodeClients = nodePins(inst, live, Finding{})
	}
	nodes, gateways, err := r.d.Provisioner.RenderJobs(target, instances.SizeOf(plan))
	if err != nil {
		return nil, err
	}
	desired := map[string]*api.Job{"gateways": gateways}
	if live.nodes.Meta[naming.MetaPITRRestore] == "" {
		desired["nodes"] = nodes
	}
	var out []jobDrift
	for _, name := range []string{"nodes", "gateways"} {
		if desired[name] == nil {
			continue
		}
		resp, err := r.d.Nomad.Plan(ctx, desired[name])
		if err != nil {
			return nil, err
		}
		if resp.Diff == nil || resp.Diff.Type == "None" {
			continue
		}
		out = append(out, jobDrift{job: name, fields: diffFields(resp.Diff), unplaceable: len(resp.FailedTGAllocs) > 0})
	}
	return out, nil
}

// gatewayPin is the client the broker's gateway job of instance short is
// pinned to: none when the registered job live is not pinned (a provision
// lets the scheduler place it), else its former client (formerGatewayNode),
// or the client live names when that is not known. So a pin a repair set
// is the broker's own, and is not drift.
func (r *Reconciler) gatewayPin(ctx context.Context, short string, live *api.Job) (string, error) {
	pinned := pinnedClient(live)
	if pinned == "" {
		return "", nil
	}
	former, err := r.formerGatewayNode(ctx, short)
	if err != nil || former == "" {
		return pinned, err
	}
	return former, nil
}

// pinnedClient is the Nomad client job's node_id constraint names
// (attribute ${node.unique.id}), "" when it has none.
func pinnedClient(job *api.Job) string {
	for _, c := range job.Constraints {
		if c.LTarget == "${node.unique.id}" && (c.Operand == "" || c.Operand == "=" || c.Operand == "==" || c.Operand == "is") {
			return c.RTarget
		}
	}
	return ""
}

// diffFields flattens a plan's diff into the paths of the fields that
// would change, with their old and new values when both are numbers (a
// job spec holds no secret, but a hand-edited one might: other values are
// not logged).
func diffFields(d *api.JobDiff) []string {
	out := fieldsOf("", d.Fields, d.Objects)
	for _, tg := range d.TaskGroups {
		if tg.Type == "None" {
			continue
		}
		prefix := "TaskGroup " + tg.Name + "/"
		out = append(out, fieldsOf(prefix, tg.Fields, tg.Objects)...)
		for _, t := range tg.Tasks {
			if t.Type != "None" {
				out = append(out, fieldsOf(prefix+"Task "+t.Name+"/", t.Fields, t.Objects)...)
			}
		}
	}
	return out
}

func fieldsOf(prefix string, fields []*api.FieldDiff, objects []*api.ObjectDiff) []string {
	var out []string
	for _, f := range fields {
		if f.Type == "None" {
			continue
		}
		line := prefix + f.Name
		if isNumber(f.Old) && isNumber(f.New) {
			line += ": " + f.Old + " → " + f.New
		} else {
			line += " " + strings.ToLower(f.Type)
		}
		out = append(out, line)
	}
	for _, o := range objects {
		if o.Type != "None" {
			out = append(out, fieldsOf(prefix+o.Name+"/", o.Fields, o.Objects)...)
		}
	}
	return out
}

func isNumber(s string) bool {
	_, err := strconv.ParseFloat(s, 64)
	return err == nil
}
