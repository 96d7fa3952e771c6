package store

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
)

// Advisory lock classes (first key of pg_advisory_lock(int, int)) of the
// reconcile loop: one broker of a deployment reconciles at a time
// (ReconcileClass, second key 0), and an instance under repair is locked
// (RepairClass, second key hashtext(instance id)) so that no operation
// starts on it meanwhile (StartOperation takes the same lock, shared).
const (
	ReconcileClass = 0x70677263 // "pgrc"
	RepairClass    = 0x70677270 // "pgrp"
)

// ReconcileLock is the deployment's reconcile lock, held as a session
// advisory lock on a connection of its own until Release; the repair locks
// of instances are taken on the same connection. A broker that dies loses
// the connection, and with it every lock.
type ReconcileLock struct{ conn *pgx.Conn }

// TryReconcileLock takes the deployment's reconcile lock. ok is false when
// another broker holds it; err when the state database cannot be reached.
func (s *Store) TryReconcileLock(ctx context.Context) (lock *ReconcileLock, ok bool, err error) {
	conn, err := pgx.ConnectConfig(ctx, s.pool.Config().ConnConfig.Copy())
	if err != nil {
		return nil, false, fmt.Errorf("connect to the state database for the reconcile lock: %w", err)
	}
	if err := conn.QueryRow(ctx, "SELECT pg_try_advisory_lock($1, 0)", ReconcileClass).Scan(&ok); err != nil || !ok {
		conn.Close(context.Background())
		if err != nil {
			return nil, false, fmt.Errorf("take the reconcile lock: %w", err)
		}
		return nil, false, nil
	}
	return &ReconcileLock{conn: conn}, true, nil
}

// TryRepair locks the instance against new operations (StartOperation
// answers ErrRepairInFlight) until EndRepair. ok is false while an
// operation is being started on it.
func (l *ReconcileLock) TryRepair(ctx context.Context, instanceID string) (ok bool, err error) {
	err = l.conn.QueryRow(ctx, "SELECT pg_try_advisory_lock($1, hashtext($2))", RepairClass, instanceID).Scan(&ok)
	if err != nil {
		return false, fmt.Errorf("lock instance %s for its repair: %w", instanceID, err)
	}
	return ok, nil
}

// EndRepair unlocks an instance TryRepair locked.
func (l *ReconcileLock) EndRepair(ctx context.Context, instanceID string) error {
	if _, err := l.conn.Exec(ctx, "SELECT pg_advisory_unlock($1, hashtext($2))", RepairClass, instanceID); err != nil {
		return fmt.Errorf("unlock instance %s after its repair: %w", instanceID, err)
	}
	return nil
}

// Release frees the reconcile lock and any repair lock still held
// (closing the connection ends them).
func (l *ReconcileLock) Release() {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	l.conn.Close(ctx)
}

// noRepairInFlight is ErrRepairInFlight while the reconcile loop repairs
// the instance. Inside an operation's transaction it holds the repair lock
// shared until commit, so a repair cannot start between this check and the
// operation's row being visible.
func noRepairInFlight(ctx context.Context, tx pgx.Tx, instanceID string) error {
	var free bool
	if err := tx.QueryRow(ctx, "SELECT pg_try_advisory_xact_lock_shared($1, hashtext($2))", RepairClass, instanceID).Scan(&free); err != nil {
		return fmt.Errorf("check for a repair in progress: %w", err)
	}
	if !free {
		return ErrRepairInFlight
	}
	return nil
}
