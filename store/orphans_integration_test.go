package store_test

import (
	"context"
	"testing"

	"github.com/pgbroker/pgbroker/store"
	"github.com/pgbroker/pgbroker/store/storetest"
)

// TestRunActiveFollowsTheRunsOfBatchJobs: a dump, a restore operation and a
// base backup are active while pending (in progress) and no longer once
// finished; unknown ids are not active; an unknown kind is an error.
func TestRunActiveFollowsTheRunsOfBatchJobs(t *testing.T) {
	s, _ := storetest.NewWithURL(t)
	ctx := context.Background()
	inst := store.Instance{ID: "i-1", ShortID: "cccccccccccc", ServiceID: "postgresql", PlanID: "p", OrganizationGUID: "o", SpaceGUID: "s"}
	op := store.Operation{ID: "op-1", Kind: store.KindProvision, PlanID: "p", Description: "queued"}
	if _, err := s.Instances().CreateInstance(ctx, inst, op, store.PortRange{Min: 40000, Max: 40001}, noEnqueue); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Backups().CreateBackup(ctx, store.Backup{ID: "d-1", InstanceID: "i-1", Kind: store.BackupManual, StorageKey: "k"}, noEnqueue); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Backups().CreateBaseBackup(ctx, "bb-1", "i-1", "2026-W48", noEnqueue); err != nil {
		t.Fatal(err)
	}
	check := func(kind, id string, want bool) {
		t.Helper()
		if got, err := s.Orphans().RunActive(ctx, kind, id); err != nil || got != want {
			t.Errorf("RunActive(%s, %s) = %v, %v; want %v", kind, id, got, err, want)
		}
	}
	check("dump", "d-1", true)
	check("restore", "op-1", true)
	check("basebackup", "bb-1", true)
	check("dump", "nope", false)
	if err := s.Backups().SucceedBackup(ctx, "d-1", 1, "ab"); err != nil {
		t.Fatal(err)
	}
	if err := s.Instances().FinishOperation(ctx, "op-1", store.Succeeded, "done"); err != nil {
		t.Fatal(err)
	}
	if err := s.Backups().FinishBaseBackup(ctx, "bb-1", store.BackupFailed, "", "broken"); err != nil {
		t.Fatal(err)
	}
	check("dump", "d-1", false)
	check("restore", "op-1", false)
	check("basebackup", "bb-1", false)
	if _, err := s.Orphans().RunActive(ctx, "nodes", "x"); err == nil {
		t.Error("RunActive accepted kind nodes")
	}
}
