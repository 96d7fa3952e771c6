package store_test

import (
	"context"
	"regexp"
	"testing"

	"github.com/pgbroker/pgbroker/store"
	"github.com/pgbroker/pgbroker/store/storetest"
)

// TestDeploymentIdentityTombstonesAndSweepRefusal: a state database has one
// stable deployment identity, distinct from another database's; instance
// records tell a live instance from a tombstone; a sweep refusal is
// recorded, read back and cleared.
func TestDeploymentIdentityTombstonesAndSweepRefusal(t *testing.T) {
	s, _ := storetest.NewWithURL(t)
	other, _ := storetest.NewWithURL(t)
	ctx := context.Background()
	id, err := s.DeploymentID(ctx)
	again, _ := s.DeploymentID(ctx)
	otherID, _ := other.DeploymentID(ctx)
	if err != nil || !regexp.MustCompile(`^[0-9a-f-]{36}$`).MatchString(id) || again != id || otherID == id {
		t.Fatalf("deployment ids %q, %q, other %q, %v", id, again, otherID, err)
	}
	for _, inst := range []store.Instance{
		{ID: "live", ShortID: "aaaaaaaaaaaa", ServiceID: "postgresql", PlanID: "p", OrganizationGUID: "o", SpaceGUID: "s"},
		{ID: "gone", ShortID: "bbbbbbbbbbbb", ServiceID: "postgresql", PlanID: "p", OrganizationGUID: "o", SpaceGUID: "s"},
	} {
		op := store.Operation{ID: "op-" + inst.ID, Kind: store.KindProvision, PlanID: "p", Description: "queued"}
		if _, err := s.Instances().CreateInstance(ctx, inst, op, store.PortRange{Min: 40000, Max: 40010}, noEnqueue); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := s.Pool().Exec(ctx, `UPDATE instances SET deprovisioned_at = now() WHERE id = 'gone'`); err != nil {
		t.Fatal(err)
	}
	records, err := s.Orphans().InstanceRecords(ctx)
	if err != nil || len(records) != 2 || records["aaaaaaaaaaaa"] || !records["bbbbbbbbbbbb"] {
		t.Fatalf("records %v, %v", records, err)
	}
	if reason, _, err := s.Orphans().SweepRefusal(ctx); reason != "" || err != nil {
		t.Fatalf("refusal before any: %q, %v", reason, err)
	}
	if err := s.Orphans().RecordSweepRefusal(ctx, "unknown instances"); err != nil {
		t.Fatal(err)
	}
	if reason, at, err := s.Orphans().SweepRefusal(ctx); reason != "unknown instances" || at.IsZero() || err != nil {
		t.Fatalf("refusal %q at %v, %v", reason, at, err)
	}
	if err := s.Orphans().RecordSweepRefusal(ctx, ""); err != nil {
		t.Fatal(err)
	}
	if reason, _, _ := s.Orphans().SweepRefusal(ctx); reason != "" {
		t.Fatalf("refusal after clearing: %q", reason)
	}
}
