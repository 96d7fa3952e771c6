package worker

import (
	"testing"

	"github.com/pgbroker/pgbroker/operation"
	"github.com/pgbroker/pgbroker/provisioner"
)

// TestAnUpgradesNodeJobRunsTheTargetVersionWithTheInstancesSettings: the
// update's postgres_version becomes the version the re-registered node job
// runs; the settings it does not name stay the instance's.
func TestAnUpgradesNodeJobRunsTheTargetVersionWithTheInstancesSettings(t *testing.T) {
	target := "15.20"
	in := provisioner.Instance{ShortID: "0123456789ab", ForceTLS: true, Extensions: []string{"pgcrypto"}, PostgresVersion: "15.18"}
	want, err := withUpdateSettings(in, operation.Encode(operation.Update{PostgresVersion: &target}))
	if err != nil {
		t.Fatal(err)
	}
	if want.PostgresVersion != "15.20" || !want.ForceTLS || len(want.Extensions) != 1 {
		t.Fatalf("after the upgrade's settings: %+v, want 15.20 with Force TLS and pgcrypto kept", want)
	}
	same, err := withUpdateSettings(in, operation.Encode(operation.Update{}))
	if err != nil || same.PostgresVersion != "15.18" {
		t.Fatalf("an update without upgrade: version %q (%v), want 15.18", same.PostgresVersion, err)
	}
}
