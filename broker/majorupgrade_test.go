package broker

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/pivotal-cf/brokerapi/v10/domain"

	"github.com/pgbroker/pgbroker/catalog"
	"github.com/pgbroker/pgbroker/operation"
	"github.com/pgbroker/pgbroker/pgversion"
	"github.com/pgbroker/pgbroker/store"
)

func majorUpgrade(params string) domain.UpdateDetails {
	return domain.UpdateDetails{ServiceID: "postgresql", RawParameters: json.RawMessage(params)}
}

// on15_20 is a fixture whose instances are provisioned on 15.20, the newest
// 15 of a broker offering 15.18, 15.20 and 18.6.
func on15_20(t *testing.T) *fixture {
	f := newFixture(t, store.PortRange{Min: 40000, Max: 40009}, func(c *catalog.Catalog) {
		c.OfferPostgres(pgversion.Version{Major: 15, Minor: 20})
	})
	offering15_20(t, f)
	return f
}

func TestAStarterMajorUpgradeRecordsTheNewestMinorOfTheMajorAndNoParameter(t *testing.T) {
	f := on15_20(t)
	ctx := context.Background()
	f.provisioned(t, "i-1", "postgresql-starter-512")
	spec, err := f.b.Update(ctx, "i-1", majorUpgrade(`{"postgresql_version": "18"}`), true)
	if err != nil || !spec.IsAsync {
		t.Fatalf("major upgrade: %+v %v, want 202", spec, err)
	}
	op, err := f.st.Instances().LatestOperation(ctx, "i-1")
	if err != nil {
		t.Fatal(err)
	}
	payload, err := operation.Decode[operation.Update](op.Parameters)
	if err != nil || payload.PostgresVersion == nil || *payload.PostgresVersion != "18.6" || op.PlanID != "postgresql-starter-512" {
		t.Fatalf("operation %s on plan %s (%v), want postgres_version 18.6 on the same plan", op.Parameters, op.PlanID, err)
	}
	if strings.Contains(string(op.Parameters), "postgresql_version") {
		t.Fatalf("operation parameters %s keep postgresql_version: the instance would keep it as a setting", op.Parameters)
	}
	if spec, err := f.b.Update(ctx, "i-1", majorUpgrade(`{"postgresql_version": "15"}`), true); err == nil || spec.IsAsync {
		// Another operation is in flight: anything but a new one.
		t.Fatalf("its own major during the upgrade: %+v, want no new operation", spec)
	}
}

func TestItsOwnMajorIsNothingToDo(t *testing.T) {
	f := on15_20(t)
	f.provisioned(t, "i-1", "postgresql-starter-512")
	if spec, err := f.b.Update(context.Background(), "i-1", majorUpgrade(`{"postgresql_version": "15"}`), true); err != nil || spec.IsAsync {
		t.Fatalf("its own major: %+v %v, want 200 without operation", spec, err)
	}
}

func TestMajorUpgradesThatCannotBeAre422NamingTheParameterAndChangeNothing(t *testing.T) {
	f := on15_20(t)
	f.b.WithHA(true)
	ctx := context.Background()
	f.provisioned(t, "i-1", "postgresql-starter-512")
	f.provisioned(t, "i-b", "postgresql-business-512")
	offering15_20(t, f)
	old := newFixture(t, store.PortRange{Min: 40010, Max: 40019}) // provisions on 15.18
	old.provisioned(t, "i-old", "postgresql-starter-512")
	offering15_20(t, old)

	cases := []struct {
		name     string
		f        *fixture
		instance string
		details  domain.UpdateDetails
		says     string
	}{
		{"downgrade", f, "i-1", majorUpgrade(`{"postgresql_version": "14"}`), "only go forward"},
		{"unknown major", f, "i-1", majorUpgrade(`{"postgresql_version": "17"}`), "PostgreSQL 17 is not offered by this broker (offered: 18.6, 15.20, 15.18)"},
		{"not on the newest minor", old, "i-old", majorUpgrade(`{"postgresql_version": "18"}`), "upgrade it to 15.20, the newest 15.x, first"},
		{"business", f, "i-b", majorUpgrade(`{"postgresql_version": "18"}`), "a major upgrade of a Business cluster is not supported by this broker yet"},
		{"with a plan change", f, "i-1", domain.UpdateDetails{ServiceID: "postgresql", PlanID: "postgresql-starter-1024",
			RawParameters: json.RawMessage(`{"postgresql_version": "18"}`)}, "cannot come with a plan change"},
		{"to business", f, "i-1", domain.UpdateDetails{ServiceID: "postgresql", PlanID: "postgresql-business-512",
			RawParameters: json.RawMessage(`{"postgresql_version": "18"}`)}, "Business cluster"},
		{"with another parameter", f, "i-1", majorUpgrade(`{"postgresql_version": "18", "force_tls": true}`), "cannot come with other changes (parameter force_tls)"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			before, _ := c.f.st.Instances().GetInstance(ctx, c.instance)
			enqueued := len(c.f.enqueued)
			_, err := c.f.b.Update(ctx, c.instance, c.details, true)
			if status(err) != http.StatusUnprocessableEntity || errorKey(err) != "MajorUpgradeNotPossible" ||
				!strings.Contains(err.Error(), "postgresql_version") || !strings.Contains(err.Error(), c.says) {
				t.Fatalf("%v (key %q), want 422 MajorUpgradeNotPossible naming postgresql_version and saying %q", err, errorKey(err), c.says)
			}
			after, _ := c.f.st.Instances().GetInstance(ctx, c.instance)
			if len(c.f.enqueued) != enqueued || after.PostgresVersion != before.PostgresVersion || after.PlanID != before.PlanID || after.ForceTLS != before.ForceTLS {
				t.Fatalf("a refused major upgrade changed something: enqueued %d -> %d, %+v -> %+v", enqueued, len(c.f.enqueued), before, after)
			}
		})
	}
}

func TestAMajorThatIsNotANumberIsRefusedByTheSchema(t *testing.T) {
	f := on15_20(t)
	f.provisioned(t, "i-1", "postgresql-starter-512")
	_, err := f.b.Update(context.Background(), "i-1", majorUpgrade(`{"postgresql_version": "18.6"}`), true)
	if status(err) != http.StatusBadRequest || !strings.Contains(err.Error(), "postgresql_version") {
		t.Fatalf("18.6: %v, want 400 naming postgresql_version", err)
	}
}

// TestNoPointInTimeRestoreFromAnInstanceOnAMajorPgBackRestDoesNotArchive:
// once an instance runs 18.6, which the clients' pgBackRest 2.45 does not
// archive (pgversion.PgBackRestMaxMajor), restore_from.point_in_time from
// it is a 422 saying why, and nothing is recorded; before, it is accepted.
func TestNoPointInTimeRestoreFromAnInstanceOnAMajorPgBackRestDoesNotArchive(t *testing.T) {
	f := on15_20(t)
	f.b.WithPITR(true)
	ctx := context.Background()
	const plan = "postgresql-starter-512"
	f.provisioned(t, "source", plan)
	if _, err := f.st.Backups().CreateBaseBackup(ctx, "bb-1", "source", "2026-W48", func(context.Context, pgx.Tx, string) error { return nil }); err != nil {
		t.Fatal(err)
	}
	if err := f.st.Backups().FinishBaseBackup(ctx, "bb-1", store.BackupSucceeded, "label", ""); err != nil {
		t.Fatal(err)
	}
	at := time.Now().UTC().Add(time.Second)
	time.Sleep(time.Until(at))
	restore := func(id string) error {
		d := details(plan)
		d.RawParameters = json.RawMessage(`{"restore_from":{"instance_id":"source","point_in_time":"` + at.Format(time.RFC3339Nano) + `"}}`)
		_, err := f.b.Provision(ctx, id, d, true)
		return err
	}
	if err := restore("copy-on-15"); err != nil {
		t.Fatalf("point-in-time restore from 15.20: %v", err)
	}
	spec, err := f.b.Update(ctx, "source", majorUpgrade(`{"postgresql_version": "18"}`), true)
	if err != nil {
		t.Fatal(err)
	}
	if err := f.st.Instances().FinishOperation(ctx, spec.OperationData, store.Succeeded, "on 18.6"); err != nil {
		t.Fatal(err)
	}
	err = restore("copy-on-18")
	if status(err) != http.StatusUnprocessableEntity || !strings.Contains(err.Error(), "runs PostgreSQL 18.6") {
		t.Fatalf("point-in-time restore from 18.6: %d %v, want 422 saying it runs PostgreSQL 18.6", status(err), err)
	}
	if _, err := f.st.Instances().GetInstance(ctx, "copy-on-18"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("the refused provision recorded the instance: %v", err)
	}
}

// TestTheCatalogsMaintenanceInfoTakesAnInstanceOnANewerMajorToItsNewestMinor:
// after a major upgrade to 18.5, the platform's upgrade (an update with the
// catalog's maintenance_info, 15.20.0) asks for the instance's newest
// maintenance: 18.6 once offered, recorded as the operation's target, and
// nothing once it runs that; GET instance says 18.6 is available. An older
// 15.x is still a downgrade.
func TestTheCatalogsMaintenanceInfoTakesAnInstanceOnANewerMajorToItsNewestMinor(t *testing.T) {
	f := on15_20(t)
	ctx := context.Background()
	offer := func(s string) {
		o, err := pgversion.ParseOffered(s)
		if err != nil {
			t.Fatal(err)
		}
		f.b.WithPostgres(o)
	}
	offer("15.18=/a,15.20=/b,18.5=/c")
	f.provisioned(t, "i-1", "postgresql-starter-512")
	if _, err := f.b.Update(ctx, "i-1", majorUpgrade(`{"postgresql_version": "18"}`), true); err != nil {
		t.Fatal(err)
	}
	op, err := f.st.Instances().LatestOperation(ctx, "i-1")
	if err != nil {
		t.Fatal(err)
	}
	if err := f.st.Instances().FinishOperation(ctx, op.ID, store.Succeeded, "upgraded"); err != nil {
		t.Fatal(err)
	}
	if inst, _ := f.st.Instances().GetInstance(ctx, "i-1"); inst.PostgresVersion != "18.5" {
		t.Fatalf("after the major upgrade: %q, want 18.5", inst.PostgresVersion)
	}
	if spec, err := f.b.Update(ctx, "i-1", upgradeTo("15.20.0"), true); err != nil || spec.IsAsync {
		t.Fatalf("the catalog's maintenance_info on the newest 18 offered: %+v %v, want 200 without operation", spec, err)
	}

	offer("15.18=/a,15.20=/b,18.5=/c,18.6=/d")
	got, err := f.b.GetInstance(ctx, "i-1", domain.FetchInstanceDetails{})
	if err != nil || got.Metadata.Attributes["upgrade_available"] != "18.6" {
		t.Fatalf("GET on 18.5 with 18.6 offered: %+v (%v), want upgrade_available 18.6", got.Metadata.Attributes, err)
	}
	if _, err := f.b.Update(ctx, "i-1", upgradeTo("15.18.0"), true); status(err) != http.StatusUnprocessableEntity || !strings.Contains(err.Error(), "only go forward") {
		t.Fatalf("an older 15 than the catalog's: %v, want 422 (a downgrade)", err)
	}
	spec, err := f.b.Update(ctx, "i-1", upgradeTo("15.20.0"), true)
	if err != nil || !spec.IsAsync {
		t.Fatalf("the catalog's maintenance_info with 18.6 offered: %+v %v, want 202", spec, err)
	}
	op, err = f.st.Instances().LatestOperation(ctx, "i-1")
	if err != nil {
		t.Fatal(err)
	}
	payload, err := operation.Decode[operation.Update](op.Parameters)
	if err != nil || payload.PostgresVersion == nil || *payload.PostgresVersion != "18.6" {
		t.Fatalf("operation %s (%v), want postgres_version 18.6", op.Parameters, err)
	}
}
