package tiers

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/pgbroker/pgbroker/adminconn"
)

// readOnlyTransaction is SQLSTATE 25006 (read_only_sql_transaction).
const readOnlyTransaction = "25006"

// ensureReplicationRole makes sure the replication role exists on the
// leader, retrying every 200 ms while the server admin reaches is still
// read-only: a leader Patroni has just elected answers the gateway's
// /primary check a moment before its promotion ends (seen in a Business
// repair, where either node may win). Other errors, and ctx's end, return
// at once.
func ensureReplicationRole(ctx context.Context, admin adminconn.AdminConn, password string) error {
	for {
		err := admin.EnsureReplicationRole(ctx, password)
		var pgErr *pgconn.PgError
		if err == nil || !errors.As(err, &pgErr) || pgErr.Code != readOnlyTransaction {
			if err != nil {
				return fmt.Errorf("replication role: %w", err)
			}
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("replication role: the leader stayed read-only: %w", err)
		case <-time.After(200 * time.Millisecond):
		}
	}
}
