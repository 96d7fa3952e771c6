package store_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/pgbroker/pgbroker/store"
	"github.com/pgbroker/pgbroker/store/storetest"
)

// TestScheduledBackupRecordedOnceFromTwoReplicas: two Store values (two
// broker replicas) record the same scheduled run; one backup exists and one
// job was enqueued.
func TestScheduledBackupRecordedOnceFromTwoReplicas(t *testing.T) {
	a, url := storetest.NewWithURL(t)
	ctx := context.Background()
	b, err := store.Open(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	inst := store.Instance{ID: "i-1", ShortID: "bbbbbbbbbbbb", ServiceID: "postgresql", PlanID: "p", OrganizationGUID: "o", SpaceGUID: "s"}
	op := store.Operation{ID: "op-1", Kind: store.KindProvision, PlanID: "p", Description: "queued"}
	if _, err := a.Instances().CreateInstance(ctx, inst, op, store.PortRange{Min: 40000, Max: 40001}, noEnqueue); err != nil {
		t.Fatal(err)
	}
	run := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	enqueued := 0
	count := func(context.Context, pgx.Tx, string) error { enqueued++; return nil }
	for i, st := range []*store.Store{a, b, a} {
		created, err := st.Backups().CreateBackup(ctx, store.Backup{ID: []string{"x", "y", "z"}[i], InstanceID: "i-1", Kind: store.BackupDaily,
			ScheduledAt: &run, StorageKey: "k"}, count)
		if err != nil {
			t.Fatal(err)
		}
		if created != (i == 0) {
			t.Errorf("replica %d: created = %v", i, created)
		}
	}
	list, err := b.Backups().ListBackups(ctx, "i-1")
	if err != nil {
		t.Fatal(err)
	}
	if len(list) != 1 || enqueued != 1 {
		t.Fatalf("%d backups, %d jobs enqueued; want 1 and 1", len(list), enqueued)
	}
	if _, err := a.Backups().StartBackup(ctx, "x"); err != nil {
		t.Fatal(err)
	}
	if err := a.Backups().SucceedBackup(ctx, "x", 42, "ab"); err != nil {
		t.Fatal(err)
	}
	if err := a.Backups().FailBackup(ctx, "x", "too late"); err != nil {
		t.Fatal(err)
	}
	got, err := a.Backups().GetBackup(ctx, "x")
	if err != nil || got.Status != store.BackupSucceeded || got.SizeBytes != 42 || got.SHA256 != "ab" || got.StartedAt == nil {
		t.Fatalf("backup = %+v, %v; want succeeded, 42 bytes, sha ab, started", got, err)
	}
	if _, err := a.Backups().GetBackup(ctx, "nope"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("GetBackup(unknown) = %v, want ErrNotFound", err)
	}
	health, err := b.Backups().LastSuccessfulBackups(ctx)
	if err != nil || len(health) != 1 || health[0].InstanceID != "i-1" {
		t.Fatalf("health = %v, %v", health, err)
	}
}
