package provisioner

import (
	"context"
	"time"
)

// RestoreToTime brings the instance back to its state at target (UTC,
// microseconds) with pgBackRest (pitr.Restorer.RestoreToTime), once per
// restoreID. The instance is down meanwhile. Errors: *ExecError when
// pgBackRest failed; others are worth retrying.
func (p *Provisioner) RestoreToTime(ctx context.Context, in Instance, size Size, restoreID string, target time.Time, progress Progress) error {
	return p.pitr.RestoreToTime(ctx, in, size, restoreID, target, progress)
}

// RestoreFromStanza makes the freshly provisioned instance in a copy of
// instance source (short id) as it was at target (pitr.Restorer.RestoreFromStanza).
// Idempotent. Errors: *ExecError when pgBackRest failed on source; others
// are worth retrying.
func (p *Provisioner) RestoreFromStanza(ctx context.Context, in Instance, size Size, source, restoreID string, target time.Time, progress Progress) error {
	return p.pitr.RestoreFromStanza(ctx, in, size, source, restoreID, target, progress)
}

// RestoreRegistered reports whether the point-in-time restore restoreID of
// the instance is under way or done (pitr.Restorer.RestoreRegistered).
func (p *Provisioner) RestoreRegistered(ctx context.Context, in Instance, restoreID string) (bool, error) {
	return p.pitr.RestoreRegistered(ctx, in, restoreID)
}
