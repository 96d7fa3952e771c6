package provisioner

import (
	"context"
	"fmt"

	"github.com/pgbroker/pgbroker/instancejobs"
	"github.com/pgbroker/pgbroker/naming"
)

// ChangePlan moves a provisioned instance from plan size from to size to,
// keeping its data, gateway port and DATABASE_URL (issue #5 "Plan changes
// across tiers"):
//   - single node to single node: Resize (the node restarts on its data);
//   - Business to Business: tiers.Changer.Roll (standbys first, one switchover,
//     then the old leader);
//   - single node to Business: tiers.Changer.ToCluster (Patroni adopts the node, the
//     gateways route by Patroni, a standby clones it);
//   - Business to single node: tiers.Changer.ToSingle (node-0 leads, the standbys go,
//     the node runs without Patroni).
//
// It returns where the data now lives (Placement.NodeID "" when unchanged;
// Placement.NodeClients, each node's client, when to has standbys and they
// run on distinct clients). Every step is idempotent: after a crash,
// running it again finishes it.
func (p *Provisioner) ChangePlan(ctx context.Context, in Instance, from, to Size, progress Progress) (Placement, error) {
	var err error
	switch {
	case !from.HA() && !to.HA():
		if err := p.Resize(ctx, in, to, progress); err != nil {
			return Placement{}, err
		}
		return Placement{}, p.markClusterMade(ctx, in.ShortID)
	case !to.HA():
		placed, err := p.tiers.ToSingle(ctx, in, to, progress)
		if err != nil {
			return placed, err
		}
		return placed, p.markClusterMade(ctx, in.ShortID)
	case from.HA():
		err = p.tiers.Roll(ctx, in, to, progress)
	default:
		err = p.tiers.ToCluster(ctx, in, to, progress)
	}
	if err != nil {
		return Placement{}, err
	}
	return p.nodeClients(ctx, in.ShortID, to.Nodes)
}

// nodeClients returns the Placement of the n nodes of instance short's
// cluster as their running allocations say (NodeClients nil when that is
// not one node per distinct client). Errors: Nomad's.
func (p *Provisioner) nodeClients(ctx context.Context, short string, n int) (Placement, error) {
	allocs, err := p.nomad.Allocations(ctx, naming.NodesJobID(short), false)
	if err != nil {
		return Placement{}, fmt.Errorf("read where the nodes run: %w", err)
	}
	clients, _ := instancejobs.NodeClients(allocs, n)
	return Placement{NodeClients: clients}, nil
}
