package backup

import (
	"context"
	"fmt"
	"time"

	"github.com/hashicorp/nomad/api"
)

// Limits bound how long one dump, restore or base backup may run, from its
// start to its end across every attempt: Base plus PerGiB for each GiB of
// the plan's disk (catalog.Plan.DiskMiB), so a bigger database gets longer.
// The defaults (15 min + 4 min/GiB: 47 min for an 8 GiB disk, 4 h 15 min
// for 60 GiB) assume a worst case of about 4 MiB/s end to end; README
// "Backups" documents them and PGBROKER_BACKUP_TIME_BASE and
// PGBROKER_BACKUP_TIME_PER_GIB change them.
type Limits struct {
	Base   time.Duration
	PerGiB time.Duration
}

// DefaultLimits are the limits when none are configured.
var DefaultLimits = Limits{Base: 15 * time.Minute, PerGiB: 4 * time.Minute}

// For returns the time limit of a batch job on a plan with diskMiB MiB of
// disk (a partial GiB counts whole).
func (l Limits) For(diskMiB int) time.Duration {
	gib := (diskMiB + 1023) / 1024
	return l.Base + time.Duration(gib)*l.PerGiB
}

// StopBatch stops batch job jobID (DumpJobID, RestoreJobID,
// BaseBackupJobID; Nomad purge), waits until each of its
// allocations has stopped, then deletes its Variable. A job Nomad does not
// know is stopped already. The caller records a failure only once this
// returned nil: an outcome is never written while the job still runs.
// Errors: Nomad did not answer, or ctx ended before the allocations
// stopped (worth retrying).
func (b *Backups) StopBatch(ctx context.Context, jobID string) error {
	allocs, err := b.nomad.Allocations(ctx, jobID, false)
	if err != nil {
		return err
	}
	var running []string
	for _, a := range allocs {
		if a.ClientStatus == api.AllocClientStatusPending || a.ClientStatus == api.AllocClientStatusRunning {
			running = append(running, a.ID)
		}
	}
	if err := b.nomad.Purge(ctx, jobID); err != nil {
		return err
	}
	if err := b.nomad.WaitStopped(ctx, running); err != nil {
		return fmt.Errorf("stop job %s: %w", jobID, err)
	}
	if err := b.nomad.DeleteVariable(ctx, jobSecretPath(jobID)); err != nil {
		return err
	}
	b.log.Info("stopped a batch job", "job", jobID, "allocations", len(running))
	return nil
}
