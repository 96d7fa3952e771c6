package tiers

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/pgbroker/pgbroker/adminconn"
	"github.com/pgbroker/pgbroker/instance"
	"github.com/pgbroker/pgbroker/patroni"
	"github.com/pgbroker/pgbroker/pgadmin"
)

// WaitStandbys makes sure the replication role exists on the leader (Patroni
// does not create it when it adopts an existing cluster) and waits until want
// standbys stream from it, one of them synchronous, reporting each
// member's state as progress ("standby node-1 streaming (sync), lag 0 B").
func (ch *Changer) WaitStandbys(ctx context.Context, admin adminconn.AdminConn, replicationPassword string, want int, progress instance.Progress) error {
	progress("setting up replication")
	if err := ensureReplicationRole(ctx, admin, replicationPassword); err != nil {
		return err
	}
	last, err := watchStandbys(ctx, admin, func(s []pgadmin.Standby) bool { return streaming(s) >= want && hasSync(s) },
		func(s []pgadmin.Standby) string { return describeStandbys(s, want) }, progress)
	if err != nil {
		return fmt.Errorf("waiting for %d standbys to stream from the leader: %w (last: %s)", want, err, last)
	}
	return nil
}

// watchStandbys polls the leader's pg_stat_replication (through admin)
// every 200 ms until ok(standbys), reporting describe(standbys) as progress
// when it changes. It returns the last description, and ctx's error when
// ctx ends first.
func watchStandbys(ctx context.Context, admin adminconn.AdminConn, ok func([]pgadmin.Standby) bool, describe func([]pgadmin.Standby) string, progress instance.Progress) (string, error) {
	last := ""
	for {
		attempt, cancel := context.WithTimeout(ctx, 2*time.Second)
		standbys, err := admin.Standbys(attempt)
		cancel()
		if err == nil {
			if s := describe(standbys); s != last {
				progress(s)
				last = s
			}
			if ok(standbys) {
				return last, nil
			}
		}
		select {
		case <-ctx.Done():
			return last, ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
	}
}

func streaming(standbys []pgadmin.Standby) int {
	n := 0
	for _, s := range standbys {
		if s.State == "streaming" {
			n++
		}
	}
	return n
}

func hasSync(standbys []pgadmin.Standby) bool {
	for _, s := range standbys {
		if s.State == "streaming" && s.SyncState == "sync" {
			return true
		}
	}
	return false
}

// describeStandbys: "standby 1 of 1 streaming: node-1 (sync, lag 0 B)".
func describeStandbys(standbys []pgadmin.Standby, want int) string {
	if len(standbys) == 0 {
		return fmt.Sprintf("waiting for %d standby(s) to clone the leader and stream", want)
	}
	parts := make([]string, len(standbys))
	for i, s := range standbys {
		parts[i] = fmt.Sprintf("%s %s (%s, lag %d B)", s.Name, s.State, s.SyncState, s.LagBytes)
	}
	return fmt.Sprintf("standby %d of %d streaming: %s", streaming(standbys), want, strings.Join(parts, "; "))
}

// WaitHealthy waits until Patroni itself reports a running leader and want
// standbys, one of them its synchronous standby (the only one it would
// promote): pg_stat_replication says "sync" a moment before Patroni records it.
func (ch *Changer) WaitHealthy(ctx context.Context, short string, want int, progress instance.Progress) error {
	c, err := ch.clusters(ctx, short)
	if err != nil {
		return err
	}
	_, err = c.WaitMembers(ctx, "cluster", patroni.Healthy(want), progress)
	return err
}
