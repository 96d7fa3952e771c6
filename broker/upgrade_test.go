package broker

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"testing"

	"github.com/pivotal-cf/brokerapi/v10/domain"
	"github.com/pivotal-cf/brokerapi/v10/domain/apiresponses"

	"github.com/pgbroker/pgbroker/catalog"
	"github.com/pgbroker/pgbroker/operation"
	"github.com/pgbroker/pgbroker/pgversion"
	"github.com/pgbroker/pgbroker/store"
)

// offering15_20 is a broker offering 15.18 and 15.20 (and 18.6, a major it
// cannot upgrade to yet), after instances were provisioned on 15.18.
func offering15_20(t *testing.T, f *fixture) {
	t.Helper()
	o, err := pgversion.ParseOffered("15.18=/usr/lib/postgresql/15/bin,15.20=/opt/pg-15.20/bin,18.6=/opt/pg-18.6/bin")
	if err != nil {
		t.Fatal(err)
	}
	f.b.WithPostgres(o)
}

func upgradeTo(version string) domain.UpdateDetails {
	return domain.UpdateDetails{ServiceID: "postgresql", MaintenanceInfo: &domain.MaintenanceInfo{Version: version}}
}

func errorKey(err error) string {
	var fr *apiresponses.FailureResponse
	if errors.As(err, &fr) {
		return fr.ErrorResponse().(apiresponses.ErrorResponse).Error
	}
	return ""
}

func TestProvisionRecordsTheNewestOfferedVersion(t *testing.T) {
	f := newFixture(t, store.PortRange{Min: 40000, Max: 40009}, func(c *catalog.Catalog) {
		c.OfferPostgres(pgversion.Version{Major: 15, Minor: 20})
	})
	offering15_20(t, f)
	f.provisioned(t, "i-1", "postgresql-starter-512")
	inst, err := f.st.Instances().GetInstance(context.Background(), "i-1")
	if err != nil || inst.PostgresVersion != "15.20" {
		t.Fatalf("instance version %q (%v), want 15.20", inst.PostgresVersion, err)
	}
}

func TestAStarterUpgradeRecordsItsTargetAndChangesTheVersionOnlyWhenItSucceeds(t *testing.T) {
	f := newFixture(t, store.PortRange{Min: 40000, Max: 40009})
	ctx := context.Background()
	f.provisioned(t, "i-1", "postgresql-starter-512")
	offering15_20(t, f)

	got, err := f.b.GetInstance(ctx, "i-1", domain.FetchInstanceDetails{})
	if err != nil || got.Metadata.Attributes["postgres_version"] != "15.18" || got.Metadata.Attributes["upgrade_available"] != "15.20" {
		t.Fatalf("GET before: %+v (%v), want postgres_version 15.18, upgrade_available 15.20", got.Metadata.Attributes, err)
	}
	spec, err := f.b.Update(ctx, "i-1", upgradeTo("15.20.0"), true)
	if err != nil || !spec.IsAsync {
		t.Fatalf("upgrade: %+v %v, want 202", spec, err)
	}
	op, err := f.st.Instances().LatestOperation(ctx, "i-1")
	if err != nil {
		t.Fatal(err)
	}
	payload, err := operation.Decode[operation.Update](op.Parameters)
	if err != nil || payload.PostgresVersion == nil || *payload.PostgresVersion != "15.20" || op.PlanID != "postgresql-starter-512" {
		t.Fatalf("operation %s %s on plan %s (%v), want postgres_version 15.20 on the same plan", op.Kind, op.Parameters, op.PlanID, err)
	}
	if inst, _ := f.st.Instances().GetInstance(ctx, "i-1"); inst.PostgresVersion != "15.18" {
		t.Fatalf("version %q while upgrading, want 15.18 until it succeeds", inst.PostgresVersion)
	}
	if err := f.st.Instances().FinishOperation(ctx, op.ID, store.Succeeded, "upgraded"); err != nil {
		t.Fatal(err)
	}
	got, err = f.b.GetInstance(ctx, "i-1", domain.FetchInstanceDetails{})
	if err != nil || got.Metadata.Attributes["postgres_version"] != "15.20" || got.Metadata.Attributes["upgrade_available"] != "" {
		t.Fatalf("GET after: %+v (%v), want postgres_version 15.20 and no upgrade available", got.Metadata.Attributes, err)
	}
	if spec, err := f.b.Update(ctx, "i-1", upgradeTo("15.20.0"), true); err != nil || spec.IsAsync {
		t.Fatalf("the version it runs: %+v %v, want 200 without operation", spec, err)
	}
}

func TestVersionChangesThatAreNotANewerOfferedMinorAre422AndChangeNothing(t *testing.T) {
	f := newFixture(t, store.PortRange{Min: 40000, Max: 40009})
	ctx := context.Background()
	f.provisioned(t, "i-1", "postgresql-starter-512")
	offering15_20(t, f)
	enqueued := len(f.enqueued)
	cases := []struct {
		name, version, says string
	}{
		{"unknown minor", "15.19.0", "not offered"},
		{"not a version", "banana", "not a PostgreSQL version"},
		{"another major", "18.6.0", "major 18"},
		{"downgrade to an older major", "14.10.0", "only go forward"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := f.b.Update(ctx, "i-1", upgradeTo(c.version), true)
			if status(err) != http.StatusUnprocessableEntity || errorKey(err) != "MaintenanceInfoConflict" || !strings.Contains(err.Error(), c.says) {
				t.Fatalf("to %s: %v (key %q), want 422 MaintenanceInfoConflict saying %q", c.version, err, errorKey(err), c.says)
			}
		})
	}
	if len(f.enqueued) != enqueued {
		t.Fatalf("a refused upgrade enqueued an operation: %v", f.enqueued)
	}
	if inst, _ := f.st.Instances().GetInstance(ctx, "i-1"); inst.PostgresVersion != "15.18" {
		t.Fatalf("version %q after refusals, want 15.18", inst.PostgresVersion)
	}
}

func TestADowngradeFromTheNewestMinorIs422(t *testing.T) {
	f := newFixture(t, store.PortRange{Min: 40000, Max: 40009}, func(c *catalog.Catalog) {
		c.OfferPostgres(pgversion.Version{Major: 15, Minor: 20})
	})
	offering15_20(t, f)
	f.provisioned(t, "i-1", "postgresql-starter-512") // on 15.20
	_, err := f.b.Update(context.Background(), "i-1", upgradeTo("15.18.0"), true)
	if status(err) != http.StatusUnprocessableEntity || !strings.Contains(err.Error(), "runs PostgreSQL 15.20 and cannot go to 15.18") {
		t.Fatalf("downgrade: %v, want 422 with the reason", err)
	}
}

func TestABusinessInstanceUpgradesButNotTogetherWithAMoveBetweenTiers(t *testing.T) {
	f := newFixture(t, store.PortRange{Min: 40000, Max: 40009})
	f.b.WithHA(true)
	ctx := context.Background()
	f.provisioned(t, "i-1", "postgresql-business-512")
	f.provisioned(t, "i-2", "postgresql-starter-512")
	offering15_20(t, f)
	if spec, err := f.b.Update(ctx, "i-1", upgradeTo("15.20.0"), true); err != nil || !spec.IsAsync {
		t.Fatalf("Business upgrade: %+v %v, want 202 (a rolling upgrade)", spec, err)
	}
	d := upgradeTo("15.20.0")
	d.PlanID = "postgresql-business-512"
	if _, err := f.b.Update(ctx, "i-2", d, true); status(err) != http.StatusUnprocessableEntity || !strings.Contains(err.Error(), "change the plan first") {
		t.Fatalf("Starter to Business with an upgrade: %v, want 422 change the plan first", err)
	}
	if op, _ := f.st.Instances().LatestOperation(ctx, "i-2"); op.Kind != store.KindProvision {
		t.Fatalf("a refused upgrade recorded operation %s", op.Kind)
	}
}
