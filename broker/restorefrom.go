package broker

import (
	"context"
	"errors"
	"time"

	"github.com/pgbroker/pgbroker/catalog"
	"github.com/pgbroker/pgbroker/operation"
	"github.com/pgbroker/pgbroker/pgversion"
	"github.com/pgbroker/pgbroker/store"
)

// checkRestoreFrom checks restore_from (nil: absent), read from the
// provision's payload as the worker will read it, for a new instance
// of organization org and space space on plan: 400 naming the field when it
// names neither or both of backup_id and point_in_time, an unknown instance,
// a point_in_time that is not RFC 3339, or a backup that is not a succeeded
// dump of the instance; 422 with the reason when the instance belongs to
// another organization or space, or when point_in_time is outside the
// source's point-in-time recovery window (as POST .../backups/pitr-restore
// checks target_time) or PITR is off for the source's or the new plan.
func (b *Broker) checkRestoreFrom(ctx context.Context, restoreFrom *operation.RestoreFrom, org, space string, plan catalog.Plan) error {
	if restoreFrom == nil {
		return nil
	}
	rf := *restoreFrom
	if (rf.BackupID == "") == (rf.PointInTime == "") {
		return badRequest("restore_from needs exactly one of restore_from.backup_id (a dump) and restore_from.point_in_time (an RFC 3339 time)")
	}
	src, err := b.store.Instances().GetInstance(ctx, rf.InstanceID)
	if err != nil && !errors.Is(err, store.ErrNotFound) && !errors.Is(err, store.ErrInvalidValue) {
		return dependencyFailure("read instance from the state database", err)
	}
	if err != nil {
		return badRequest("restore_from.instance_id %q is not an instance of this broker", rf.InstanceID)
	}
	if src.OrganizationGUID != org || src.SpaceGUID != space {
		return unprocessable("RestoreFromOtherSpace",
			"restore_from.instance_id %q belongs to another organization or space: an instance can only be built from the backups of an instance of its own organization and space", rf.InstanceID)
	}
	if rf.PointInTime != "" {
		return b.checkPointInTime(ctx, rf, src, plan)
	}
	bk, err := b.store.Backups().GetBackup(ctx, rf.BackupID)
	if err != nil && !errors.Is(err, store.ErrNotFound) && !errors.Is(err, store.ErrInvalidValue) {
		return dependencyFailure("read backup from the state database", err)
	}
	if err != nil || bk.InstanceID != src.ID {
		return badRequest("restore_from.backup_id %q is not a backup of instance %s", rf.BackupID, rf.InstanceID)
	}
	if bk.Status != store.BackupSucceeded {
		return badRequest("restore_from.backup_id %q is %s: only a succeeded backup can be restored", rf.BackupID, bk.Status)
	}
	return nil
}

// checkPointInTime: restore_from.point_in_time must be an RFC 3339 time
// inside the source's PITR window: not in the future, not before its first
// base backup nor before the plan's window (pitr_days).
func (b *Broker) checkPointInTime(ctx context.Context, rf operation.RestoreFrom, src store.Instance, plan catalog.Plan) error {
	at, err := rf.At()
	if err != nil {
		return badRequest("restore_from.point_in_time %q must be an RFC 3339 time, e.g. \"2026-11-23T16:50:00Z\"", rf.PointInTime)
	}
	_, srcPlan, ok := b.catalog.Plan(src.PlanID)
	switch {
	case !b.pitr || !ok || srcPlan.Backups.PITRDays == 0:
		return unprocessable("PlanHasNoPITR", "restore_from.point_in_time: point-in-time recovery is not available on plan %s of instance %s", src.PlanID, rf.InstanceID)
	case plan.Backups.PITRDays == 0:
		return unprocessable("PlanHasNoPITR", "restore_from.point_in_time: plan %s has no point-in-time recovery; choose a plan with it", plan.ID)
	case !pgversion.Archived(src.PostgresVersion):
		return unprocessable("PlanHasNoPITR", "restore_from.point_in_time: instance %s runs PostgreSQL %s, whose WAL the clients' pgBackRest does not archive (majors up to %d)", rf.InstanceID, src.PostgresVersion, pgversion.PgBackRestMaxMajor)
	case src.Gone():
		return unprocessable("TargetTimeOutOfRange", "restore_from.point_in_time: instance %s was deprovisioned, and its WAL archive with it", rf.InstanceID)
	case at.After(time.Now()):
		return unprocessable("TargetTimeOutOfRange", "restore_from.point_in_time %s is in the future", at.Format(time.RFC3339Nano))
	}
	first, ok, err := b.store.Backups().FirstBaseBackup(ctx, src.ID)
	if err != nil {
		return dependencyFailure("read base backups from the state database", err)
	}
	if !ok {
		return unprocessable("TargetTimeOutOfRange", "restore_from.point_in_time %s is before the earliest time a restore can reach: the first base backup of instance %s has not been taken yet",
			at.Format(time.RFC3339Nano), rf.InstanceID)
	}
	if window := time.Now().Add(-time.Duration(srcPlan.Backups.PITRDays) * 24 * time.Hour); first.Before(window) {
		first = window
	}
	if at.Before(first) {
		return unprocessable("TargetTimeOutOfRange", "restore_from.point_in_time %s is before the earliest time a restore can reach (%s)",
			at.Format(time.RFC3339Nano), first.UTC().Format(time.RFC3339))
	}
	return nil
}
