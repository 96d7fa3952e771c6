package broker

import (
	"context"
	"errors"

	"github.com/pgbroker/pgbroker/store"
)

// RestoreFrom is the restore_from provision parameter: a succeeded dump of
// another instance of the same organization, restored into the new
// instance once provisioned (catalog.yaml, provision schema of paid plans).
type RestoreFrom struct {
	InstanceID string // restore_from.instance_id: the OSB instance id the dump was made of
	BackupID   string // restore_from.backup_id
}

// RestoreFromParameters returns the restore_from parameter of validated
// provision parameters; ok is false when absent.
func RestoreFromParameters(params map[string]any) (RestoreFrom, bool) {
	m, ok := params["restore_from"].(map[string]any)
	if !ok {
		return RestoreFrom{}, false
	}
	inst, _ := m["instance_id"].(string)
	backup, _ := m["backup_id"].(string)
	return RestoreFrom{InstanceID: inst, BackupID: backup}, true
}

// checkRestoreFrom answers 400 naming the field unless restore_from, when
// present, names a succeeded dump of an instance of organization org.
// Another organization's instance reads as unknown: no data crosses
// organizations.
func (b *Broker) checkRestoreFrom(ctx context.Context, params map[string]any, org string) error {
	rf, ok := RestoreFromParameters(params)
	if !ok {
		return nil
	}
	src, err := b.store.GetInstance(ctx, rf.InstanceID)
	if err != nil && !errors.Is(err, store.ErrNotFound) && !errors.Is(err, store.ErrInvalidValue) {
		return dependencyFailure("read instance from the state database", err)
	}
	if err != nil || src.OrganizationGUID != org {
		return badRequest("restore_from.instance_id %q is not an instance of organization %s", rf.InstanceID, org)
	}
	bk, err := b.store.GetBackup(ctx, rf.BackupID)
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
