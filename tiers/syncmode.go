package tiers

import (
	"context"
	"fmt"
	"time"

	"github.com/pgbroker/pgbroker/instance"
	"github.com/pgbroker/pgbroker/pgadmin"
)

// asyncWhileReplacing turns Patroni's synchronous_mode off before the broker
// lets Nomad stop a standby of a Business instance, and waits until the
// leader's pg_stat_replication shows no synchronous standby.
//
// Why: with two nodes the standby being replaced is the synchronous one.
// Stopped while synchronous, every commit waits until the leader's Patroni
// drops it (a loop, 1 s, or, when the stop races an assignment, until the
// replacement streams: 2.7 to 3.4 s measured). Off beforehand, commits never
// wait. Durability is what Patroni's non-strict synchronous mode gives
// anyway while a standby is down; a switchover still loses nothing (the
// demoted leader's shutdown waits until its standbys confirm all WAL).
// cluster.RestoreSynchronousMode turns it back on. Idempotent.
func (ch *Changer) asyncWhileReplacing(ctx context.Context, in instance.Instance, c Cluster, progress instance.Progress) error {
	progress("turning synchronous replication off while nodes are replaced")
	if err := c.SetSynchronousMode(ctx, false); err != nil {
		return err
	}
	admin, err := ch.conn.InstanceAdmin(ctx, in)
	if err != nil {
		return err
	}
	within, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	last, err := watchStandbys(within, admin, allAsync, func(s []pgadmin.Standby) string { return describeStandbys(s, len(s)) }, progress)
	if err != nil && ctx.Err() == nil {
		return fmt.Errorf("the leader still has a synchronous standby 30 s after synchronous_mode was turned off (last: %s)", last)
	}
	return err
}

// allAsync reports whether no standby is synchronous or a candidate for it
// (sync_state "sync", "potential" or "quorum" in pg_stat_replication).
func allAsync(standbys []pgadmin.Standby) bool {
	for _, s := range standbys {
		if s.SyncState != "async" {
			return false
		}
	}
	return true
}
