package store

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
)

// BackupSlotClass is the first key of the backup slots' advisory locks
// (pg_try_advisory_lock(int, int)); the second is the slot's number.
const BackupSlotClass = 0x70676273 // "pgbs"

// BackupSlot is one of the state database's backup slots, held as a session
// advisory lock on a connection of its own (not the pool's: a backup holds
// it for minutes) until Release. A broker that dies loses the connection,
// and with it the slot.
type BackupSlot struct {
	conn *pgx.Conn
	// Slot is the slot's number, 0 to n-1.
	Slot int
}

// TryBackupSlot takes a free one of the n backup slots every broker on this
// state database shares (issue #4 "Scheduler": a configurable number of
// backups at once across broker replicas, the rest queued). ok is false when
// all n are taken; err when the state database cannot be reached.
func (s *Backups) TryBackupSlot(ctx context.Context, n int) (slot *BackupSlot, ok bool, err error) {
	conn, err := pgx.ConnectConfig(ctx, s.pool.Config().ConnConfig.Copy())
	if err != nil {
		return nil, false, fmt.Errorf("connect to the state database for a backup slot: %w", err)
	}
	for i := 0; i < n; i++ {
		var got bool
		if err := conn.QueryRow(ctx, "SELECT pg_try_advisory_lock($1, $2)", BackupSlotClass, i).Scan(&got); err != nil {
			conn.Close(context.Background())
			return nil, false, fmt.Errorf("take a backup slot: %w", err)
		}
		if got {
			return &BackupSlot{conn: conn, Slot: i}, true, nil
		}
	}
	conn.Close(context.Background())
	return nil, false, nil
}

// Release frees the slot (closing its connection ends the lock).
func (b *BackupSlot) Release() {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	b.conn.Close(ctx)
}
