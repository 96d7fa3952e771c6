package broker

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/pgbroker/pgbroker/store"
)

// TestProvisionRestoreFromRules: restore_from names exactly one of
// backup_id and point_in_time (400), an instance of the same organization
// and space (422 with the reason), and a point_in_time inside the source's
// PITR window (422 naming restore_from.point_in_time); a refused provision
// records nothing.
func TestProvisionRestoreFromRules(t *testing.T) {
	f := newFixture(t, store.PortRange{Min: 40000, Max: 40020})
	f.b.WithPITR(true)
	ctx := context.Background()
	const plan = "postgresql-starter-512"
	f.provisioned(t, "source", plan)
	before := time.Now().UTC()
	if _, err := f.st.Backups().CreateBaseBackup(ctx, "bb-1", "source", "2026-W48", func(context.Context, pgx.Tx, string) error { return nil }); err != nil {
		t.Fatal(err)
	}
	if err := f.st.Backups().FinishBaseBackup(ctx, "bb-1", store.BackupSucceeded, "label", ""); err != nil {
		t.Fatal(err)
	}
	after := time.Now().UTC().Add(time.Second)
	at := func(tm time.Time) string { return tm.Format(time.RFC3339Nano) }

	cases := []struct {
		name        string
		org, space  string
		restoreFrom string
		status      int
		says        string
	}{
		{"neither", "org", "space", `{"instance_id":"source"}`, 400, "exactly one of"},
		{"both", "org", "space", `{"instance_id":"source","backup_id":"b","point_in_time":"` + at(after) + `"}`, 400, "exactly one of"},
		{"unknown instance", "org", "space", `{"instance_id":"nope","point_in_time":"` + at(after) + `"}`, 400, "restore_from.instance_id"},
		{"other organization", "org-2", "space", `{"instance_id":"source","point_in_time":"` + at(after) + `"}`, 422, "another organization or space"},
		{"other space", "org", "space-2", `{"instance_id":"source","point_in_time":"` + at(after) + `"}`, 422, "another organization or space"},
		{"other space, dump", "org", "space-2", `{"instance_id":"source","backup_id":"b"}`, 422, "another organization or space"},
		{"not a time", "org", "space", `{"instance_id":"source","point_in_time":"yesterday"}`, 400, "restore_from.point_in_time"},
		{"future", "org", "space", `{"instance_id":"source","point_in_time":"` + at(time.Now().Add(time.Hour)) + `"}`, 422, "restore_from.point_in_time"},
		{"before the first base backup", "org", "space", `{"instance_id":"source","point_in_time":"` + at(before.Add(-time.Minute)) + `"}`, 422, "restore_from.point_in_time"},
	}
	for i, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			d := details(plan)
			d.OrganizationGUID, d.SpaceGUID = c.org, c.space
			d.RawParameters = json.RawMessage(`{"restore_from":` + c.restoreFrom + `}`)
			id := fmt.Sprintf("refused-%d", i)
			_, err := f.b.Provision(ctx, id, d, true)
			if status(err) != c.status || !strings.Contains(fmt.Sprint(err), c.says) {
				t.Fatalf("provision: %d %v, want %d saying %q", status(err), err, c.status, c.says)
			}
			if _, err := f.st.Instances().GetInstance(ctx, id); !errors.Is(err, store.ErrNotFound) {
				t.Fatalf("refused provision recorded the instance: %v", err)
			}
		})
	}

	time.Sleep(time.Until(after))
	d := details(plan)
	d.RawParameters = json.RawMessage(`{"restore_from":{"instance_id":"source","point_in_time":"` + at(after) + `"}}`)
	if _, err := f.b.Provision(ctx, "copy", d, true); err != nil {
		t.Fatalf("provision inside the window: %v", err)
	}
	f.b.WithPITR(false)
	d.RawParameters = json.RawMessage(`{"restore_from":{"instance_id":"source","point_in_time":"` + at(after) + `"}}`)
	if _, err := f.b.Provision(ctx, "copy-2", d, true); status(err) != http.StatusUnprocessableEntity || !strings.Contains(err.Error(), "point-in-time recovery is not available") {
		t.Fatalf("provision with PITR off: %v, want 422", err)
	}
}
