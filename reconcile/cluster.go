package reconcile

import (
	"context"
	"fmt"
	"log/slog"
	"slices"

	"github.com/hashicorp/nomad/api"

	"github.com/pgbroker/pgbroker/catalog"
	"github.com/pgbroker/pgbroker/instancejobs"
	"github.com/pgbroker/pgbroker/instances"
	"github.com/pgbroker/pgbroker/naming"
	"github.com/pgbroker/pgbroker/provisioner"
	"github.com/pgbroker/pgbroker/store"
)

// learnPlacement records where each node of Business instance inst runs
// (store.Instance.NodeClients) when its node job, as Nomad holds it (live),
// runs one allocation per node on distinct clients and the record differs:
// so an instance provisioned before the record existed, or a node Nomad
// placed anew after its client was lost, is known where it is before Nomad
// may lose its jobs. It returns the record as it now is. Errors: Nomad's or
// the state database's.
func (r *Reconciler) learnPlacement(ctx context.Context, inst store.Instance, plan catalog.Plan, live registered, f Finding) ([]string, error) {
	if live.nodes == nil || f.NodesJob != "" || live.nodes.Meta[naming.MetaPITRRestore] != "" {
		return inst.NodeClients, nil
	}
	allocs, err := r.d.Nomad.Allocations(ctx, naming.NodesJobID(inst.ShortID), false)
	if err != nil {
		return nil, fmt.Errorf("read where the nodes run: %w", err)
	}
	clients, ok := instancejobs.NodeClients(allocs, instances.SizeOf(plan).Nodes)
	if !ok || slices.Equal(clients, inst.NodeClients) {
		return inst.NodeClients, nil
	}
	if err := r.d.Instances.SetNodeClients(ctx, inst.ID, clients); err != nil {
		return nil, err
	}
	r.log.Info("recorded the client of each node's data", slog.String("instance_id", inst.ID), slog.Any("clients", clients), slog.Any("was", inst.NodeClients))
	return clients, nil
}

// unplaced says why the client holding each node's data of Business
// instance inst (clients, by node index) is not known for sure, "" when it
// is: one client per node of plan, all distinct, each a client Nomad knows.
// Errors: Nomad's.
func (r *Reconciler) unplaced(ctx context.Context, clients []string, plan catalog.Plan) (string, error) {
	n := instances.SizeOf(plan).Nodes
	if len(clients) != n {
		return "the client holding each node's data was never recorded (the node job was lost before the broker saw it run)", nil
	}
	addrs, err := r.d.Nomad.NodeAddresses(ctx)
	if err != nil {
		return "", err
	}
	for i, c := range clients {
		switch {
		case c == "":
			return fmt.Sprintf("the client holding %s's data is not recorded", naming.Member(i)), nil
		case slices.Index(clients, c) != i:
			return fmt.Sprintf("%s and %s are recorded on the same client %s", naming.Member(slices.Index(clients, c)), naming.Member(i), c), nil
		case addrs[c] == "":
			return fmt.Sprintf("the client %s holding %s's data is not in the Nomad cluster", c, naming.Member(i)), nil
		}
	}
	return "", nil
}

// groupPinned reports whether a task group of job has a node_id
// constraint (a repair pinned its nodes one by one).
func groupPinned(job *api.Job) bool {
	if job == nil {
		return false
	}
	for _, g := range job.TaskGroups {
		for _, c := range g.Constraints {
			if c.LTarget == "${node.unique.id}" {
				return true
			}
		}
	}
	return false
}

// nodePins is store.Instance.NodeClients when the broker's definition of
// Business instance inst's node job pins each node to its data: when Nomad
// lacks the job or holds it stopped (registering it places every node
// anew), or holds it pinned (a repair pinned it: the pin is the broker's,
// not drift). Else nil: a running, unpinned job is left to the scheduler
// (distinct_hosts; a node whose client is lost is placed anew and cloned).
func nodePins(inst store.Instance, live registered, f Finding) []string {
	if f.NodesJob != "" || groupPinned(live.nodes) {
		return inst.NodeClients
	}
	return nil
}

// putBackCluster registers Business instance inst's jobs again after its
// Variables are back, and says what it did. A node job Nomad still runs
// beside its gateways (drifted, or registered by an interrupted repair:
// the roll ends by connecting through the gateways) is first rolled onto
// the broker's definition one node at a time, standbys first and the
// leader after one switchover (provisioner ChangePlan to the same size):
// at most a rolling restart. Then Provision registers both jobs, each node
// pinned to the client of its own data when Nomad lacked the node job
// (nodePins), and waits until the leader answers through the gateways and
// the standby streams. Patroni finds its cluster in etcd: each node starts
// on its data directory, the most advanced one takes the leader lock, the
// other follows it (rewound if its timeline forked).
func (r *Reconciler) putBackCluster(ctx context.Context, inst store.Instance, plan catalog.Plan, target provisioner.Instance, f Finding, live registered, log *slog.Logger) (string, error) {
	size := instances.SizeOf(plan)
	target.NodeClients = nodePins(inst, live, f)
	progress := func(step string) { log.Info("repair progress", slog.String("step", step)) }
	did := ""
	if f.NodesJob == "" && f.GatewaysJob == "" && (slices.Contains(f.Drifted, "nodes") || f.Interrupted) {
		if _, err := r.d.Provisioner.ChangePlan(ctx, target, size, size, progress); err != nil {
			return did, fmt.Errorf("roll the nodes onto the broker's definition: %w", err)
		}
		did = ", nodes rolled onto the broker's definition one at a time"
	}
	if _, err := r.d.Provisioner.Provision(ctx, target, size, progress); err != nil {
		return did, err
	}
	if len(target.NodeClients) > 0 {
		return did + fmt.Sprintf(", node and gateway jobs registered again, nodes on clients %v", target.NodeClients), nil
	}
	return did + ", node and gateway jobs registered again", nil
}
