package provisioner

import "context"

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
// It returns where the data now lives (Placement.NodeID "" when unchanged).
// Every step is idempotent: after a crash, running it again finishes it.
func (p *Provisioner) ChangePlan(ctx context.Context, in Instance, from, to Size, progress Progress) (Placement, error) {
	switch {
	case !from.HA() && !to.HA():
		return Placement{}, p.Resize(ctx, in, to, progress)
	case from.HA() && to.HA():
		return Placement{}, p.tiers.Roll(ctx, in, to, progress)
	case to.HA():
		return Placement{}, p.tiers.ToCluster(ctx, in, to, progress)
	default:
		return p.tiers.ToSingle(ctx, in, to, progress)
	}
}
