package pgadmin

import (
	"context"
	"encoding/json"
	"fmt"
)

// ReplicationRole is the role standbys stream WAL as (Patroni's
// authentication.replication user; pg_hba.conf lets it in over TLS only).
const ReplicationRole = "replicator"

// EnsureReplicationRole makes ReplicationRole a login role with REPLICATION
// and password (sent as a SCRAM-SHA-256 verifier). Patroni creates it when
// it bootstraps a cluster, not when it adopts one that exists (a Starter
// instance moving to a Business plan): then standbys cannot clone until this
// ran. Idempotent. Runs on the leader (through the gateway).
func (a Admin) EnsureReplicationRole(ctx context.Context, password string) error {
	verifier, err := ScramVerifier(password)
	if err != nil {
		return err
	}
	conn, err := a.connect(ctx, "postgres")
	if err != nil {
		return err
	}
	defer conn.Close(ctx)
	if err := ensureRole(ctx, conn, ReplicationRole, "LOGIN REPLICATION"); err != nil {
		return err
	}
	_, err = conn.Exec(ctx, "ALTER ROLE "+ident(ReplicationRole)+" LOGIN REPLICATION PASSWORD "+literal(verifier))
	if err != nil {
		return fmt.Errorf("set up role %s: %w", ReplicationRole, err)
	}
	return nil
}

// Standby is one streaming standby as the leader sees it (pg_stat_replication).
type Standby struct {
	Name      string `json:"name"`       // application_name: the Patroni member name, "node-1"
	State     string `json:"state"`      // "streaming", "catchup", ...
	SyncState string `json:"sync_state"` // "sync", "async", "potential", "quorum"
	LagBytes  int64  `json:"lag_bytes"`  // WAL the leader wrote that the standby has not replayed
}

// Standbys lists the standbys streaming from the server the connection
// reaches (the leader, through the gateway), by name.
func (a Admin) Standbys(ctx context.Context) ([]Standby, error) {
	conn, err := a.connect(ctx, "postgres")
	if err != nil {
		return nil, err
	}
	defer conn.Close(ctx)
	var raw []byte
	err = conn.QueryRow(ctx, `SELECT coalesce(json_agg(json_build_object(
			'name', application_name, 'state', state, 'sync_state', sync_state,
			'lag_bytes', coalesce(pg_wal_lsn_diff(pg_current_wal_lsn(), replay_lsn), 0)::bigint)
			ORDER BY application_name), '[]')
		FROM pg_stat_replication`).Scan(&raw)
	if err != nil {
		return nil, fmt.Errorf("read pg_stat_replication: %w", err)
	}
	var out []Standby
	if err := json.Unmarshal(raw, &out); err != nil {
		return nil, fmt.Errorf("decode pg_stat_replication: %w", err)
	}
	return out, nil
}

// Checkpoint runs CHECKPOINT on the server the connection reaches.
func (a Admin) Checkpoint(ctx context.Context) error {
	conn, err := a.connect(ctx, "postgres")
	if err != nil {
		return err
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, "CHECKPOINT"); err != nil {
		return fmt.Errorf("checkpoint: %w", err)
	}
	return nil
}
