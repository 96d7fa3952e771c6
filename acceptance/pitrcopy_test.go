package acceptance

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	osb "sigs.k8s.io/go-open-service-broker-client/v2"

	"github.com/pgbroker/pgbroker/provisioner"
)

// provisionCopy: provisions that name the source from another space or
// organization are a 422 with the reason, a point_in_time outside the
// source's window a 422 naming it, both or neither of backup_id and
// point_in_time a 400, and none creates anything (refuseBadCopies). A new
// instance of the same plan provisioned with restore_from {instance_id:
// source, point_in_time: at} was registered for its restore once (with a
// crash point, the broker is SIGKILLed there and restarted: the provision
// finishes), holds the rows at that moment, is writable through its own
// binding (on Business a healthy cluster) and archives to a stanza of its
// own; the source did not change, and its binding's credentials do not open
// the copy. Deprovisioning the copy leaves nothing of it, stanza included.
func provisionCopy(t *testing.T, source *pitrInstance, repo pitrRepo, at rowsAt, crash string) {
	t.Helper()
	refuseBadCopies(t, source, at.moment)
	b, copyID := source.b, uuid.NewString()
	provision := func() *osb.OperationKey {
		resp, err := source.c.ProvisionInstance(&osb.ProvisionRequest{
			InstanceID: copyID, AcceptsIncomplete: true, ServiceID: serviceID, PlanID: source.plan,
			OrganizationGUID: "org-acceptance", SpaceGUID: "space-acceptance",
			Parameters: map[string]any{"restore_from": map[string]any{"instance_id": source.id,
				"point_in_time": at.moment.UTC().Format(time.RFC3339Nano)}},
		})
		if err != nil {
			t.Fatal(err)
		}
		return resp.OperationKey
	}
	var op *osb.OperationKey
	switch {
	case crash == "":
		op = provision()
	case source.plan == businessPlan: // the case's attempts are long enough to survive a crash
		b.restartWith("PGBROKER_CRASH_AT", crash)
		op = provision()
		if !b.crashed(5 * time.Minute) {
			diagnose(t, copyID)
			diagnose(t, source.id)
			t.Fatalf("the broker did not crash at %s while making the copy", crash)
		}
		b.restartWithout("PGBROKER_CRASH_AT")
	default: // short attempts, rescued soon after the crash, for this operation only
		b.stop()
		b.env = append(b.env, append(crashEnv, "PGBROKER_CRASH_AT="+crash)...)
		b.start()
		op = provision()
		crashAndRestart(t, b, crash)
		defer func() { b.stop(); b.restartWithout("PGBROKER_ATTEMPT_TIMEOUT", "PGBROKER_RESCUE_AFTER") }()
	}
	waitOperation(t, source.c, copyID, op, 8*time.Minute)
	if n := nodeJobVersions(t, copyID); n != 1 {
		t.Errorf("the copy's node job was registered for its restore %d times, want once", n)
	}
	copyShort := provisioner.ShortID(copyID)
	if source.plan == businessPlan {
		waitClusterHealthy(t, copyShort, 2*time.Minute)
	}
	copyCreds := bind(t, source.c, copyID, uuid.NewString(), source.plan, nil)
	cp := connect(t, copyCreds["DATABASE_URL"].(string))
	if got := itemsChecksum(t, cp); got != at.checksum {
		t.Errorf("the copy's items checksum %s, want %s (at %s)", got, at.checksum, at.moment)
	}
	assertRowsByTime(t, cp, "the copy through DATABASE_URL", at.byTime)
	writeRow(t, cp, "written in the copy")
	cp.Close(context.Background())
	app := connect(t, source.url())
	assertRowsByTime(t, app, "the source after the copy", at.now)
	app.Close(context.Background())
	if !repo.hasArchiveInfo(t, copyShort) {
		t.Errorf("the copy's own stanza is not in the %s repository", repo.name)
	}
	assertOthersCredentialsRefused(t, source.url(), copyCreds["DATABASE_URL"].(string))
	deprovision(t, source.c, copyID, source.plan)
	assertGone(t, copyID)
	repo.assertNoStanza(t, copyShort)
}

// refuseBadCopies checks the provisions from source that must be refused.
func refuseBadCopies(t *testing.T, source *pitrInstance, target time.Time) {
	t.Helper()
	at := func(tm time.Time) string { return tm.UTC().Format(time.RFC3339Nano) }
	body := func(org, space, restoreFrom string) string {
		return fmt.Sprintf(`{"service_id":"postgresql","plan_id":%q,"organization_guid":%q,"space_guid":%q,"parameters":{"restore_from":%s}}`,
			source.plan, org, space, restoreFrom)
	}
	fromSource := func(extra string) string { return fmt.Sprintf(`{"instance_id":%q%s}`, source.id, extra) }
	for _, bad := range []struct {
		body   string
		status int
		says   string
	}{
		{body("org-acceptance", "another-space", fromSource(`,"point_in_time":"`+at(target)+`"`)), http.StatusUnprocessableEntity, "another organization or space"},
		{body("another-org", "space-acceptance", fromSource(`,"point_in_time":"`+at(target)+`"`)), http.StatusUnprocessableEntity, "another organization or space"},
		{body("org-acceptance", "space-acceptance", fromSource(`,"point_in_time":"yesterday"`)), http.StatusBadRequest, "restore_from.point_in_time"},
		{body("org-acceptance", "space-acceptance", fromSource(`,"point_in_time":"`+at(time.Now().Add(time.Hour))+`"`)), http.StatusUnprocessableEntity, "restore_from.point_in_time"},
		{body("org-acceptance", "space-acceptance", fromSource(`,"point_in_time":"`+at(source.earliest.Add(-time.Minute))+`"`)), http.StatusUnprocessableEntity, "restore_from.point_in_time"},
		{body("org-acceptance", "space-acceptance", fromSource(`,"point_in_time":"`+at(target)+`","backup_id":"x"`)), http.StatusBadRequest, "exactly one of"},
		{body("org-acceptance", "space-acceptance", fromSource("")), http.StatusBadRequest, "exactly one of"},
	} {
		id := uuid.NewString()
		status, answer := source.b.raw(http.MethodPut, "/v2/service_instances/"+id+"?accepts_incomplete=true", bad.body, nil)
		if status != bad.status || !strings.Contains(answer, bad.says) {
			t.Errorf("provision with %s: %d %s, want %d saying %q", bad.body, status, answer, bad.status, bad.says)
		}
		if jobs, _, err := nomadClient(t).Jobs().PrefixList("pg-" + provisioner.ShortID(id)); err != nil || len(jobs) != 0 {
			t.Errorf("refused provision left %d jobs (%v)", len(jobs), err)
		}
		if status, _ := source.b.raw(http.MethodGet, "/v2/service_instances/"+id+"/last_operation", "", nil); status != http.StatusGone && status != http.StatusNotFound {
			t.Errorf("refused provision: last_operation %d, want no instance", status)
		}
	}
}

// assertOthersCredentialsRefused: the user and password of sourceURL do not
// open the database at copyURL (the source's binding role did not come along
// with its data).
func assertOthersCredentialsRefused(t *testing.T, sourceURL, copyURL string) {
	t.Helper()
	u, _ := url.Parse(withRootCert(copyURL))
	su, _ := url.Parse(sourceURL)
	u.User = su.User
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if conn, err := pgx.Connect(ctx, u.String()); err == nil {
		conn.Close(ctx)
		t.Error("the source's binding credentials open the copy")
	}
}

// nodeJobVersions counts the versions of the instance's node job that carry
// a point-in-time restore (Meta pgbroker_pitr_restore set).
func nodeJobVersions(t *testing.T, instanceID string) int {
	t.Helper()
	n := 0
	for _, v := range jobVersions(t, provisioner.NodesJobID(provisioner.ShortID(instanceID))) {
		if v.Meta[provisioner.MetaPITRRestore] != "" {
			n++
		}
	}
	return n
}
