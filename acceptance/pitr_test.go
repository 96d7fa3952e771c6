package acceptance

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	osb "sigs.k8s.io/go-open-service-broker-client/v2"

	"github.com/pgbroker/pgbroker/mgmtapi"
	"github.com/pgbroker/pgbroker/naming"
)

// pitrCase is one point-in-time recovery scenario: a plan on a repository,
// and what else is asked of that instance beside its restore in place.
type pitrCase struct {
	tier, storage string // test names: "Starter" or "Business"; "Filesystem" or "S3"
	plan          string
	env           []string // more broker settings, from its start
	restoreCrash  string   // crash point hit during the restore in place ("" none)
	copy          copyWhen
	copyCrash     string // crash point hit while the copy is provisioned ("" none)
	rotate        bool   // rotate the S3 keys and restore past the rotation
}

// copyWhen says whether a copy of the instance (provision parameter
// restore_from.point_in_time) is made, and of which moment: the restore
// target, before the restore in place, or a moment after that restore (its
// WAL on the restore's timeline).
type copyWhen int

const (
	noCopy copyWhen = iota
	copyBeforeRestore
	copyAfterRestore
)

const starterPlan = "postgresql-starter-512"

// pitrCases: Business cases crash at tiers:adopted (Patroni adopted the
// restored node), Starter ones at pitr:registered (the restoring node job
// registered).
var pitrCases = []pitrCase{
	{tier: "Starter", storage: "Filesystem", plan: starterPlan, copy: copyBeforeRestore, copyCrash: "pitr:registered"},
	{tier: "Starter", storage: "S3", plan: starterPlan, copy: copyBeforeRestore, rotate: true},
	{tier: "Business", storage: "Filesystem", plan: businessPlan, env: []string{"PGBROKER_ATTEMPT_TIMEOUT=90s", "PGBROKER_RESCUE_AFTER=95s"},
		restoreCrash: "tiers:adopted", copy: copyAfterRestore, copyCrash: "tiers:adopted"},
	{tier: "Business", storage: "S3", plan: businessPlan},
}

// TestStarterPointInTimeRestore runs pointInTimeRecovery on a Starter
// instance with each repository, one after the other.
func TestStarterPointInTimeRestore(t *testing.T) { runPITRCases(t, "Starter") }

// TestBusinessPointInTimeRestore runs pointInTimeRecovery on a Business
// instance with each repository. Both run at once, beside the suite's other
// parallel tests (the crash tests), as before they were table-driven.
func TestBusinessPointInTimeRestore(t *testing.T) {
	t.Parallel()
	runPITRCases(t, "Business")
}

func runPITRCases(t *testing.T, tier string) {
	for _, tc := range pitrCases {
		if tc.tier != tier {
			continue
		}
		t.Run(tc.storage, func(t *testing.T) {
			if tc.plan == businessPlan {
				t.Parallel()
			}
			pointInTimeRecovery(t, tc)
		})
	}
}

// pointInTimeRecovery: the first weekly base backup of an instance lands in
// the repository (firstBaseBackup); rows are written at T1 and T2, a target
// noted, rows added, changed and deleted at T3. Bad targets are refused
// naming target_time; a copy (restore_from) of a moment holds the rows of
// that moment (provisionCopy); a point-in-time restore in place to the target
// gives back exactly the rows at the target through the same credentials,
// writable, and on Business a cluster again (assertClusterAgain). Rotated S3
// keys reach the node without a new job version (rotateS3Keys). No secret
// reaches a job spec or the log; deprovisioning deletes the stanza.
func pointInTimeRecovery(t *testing.T, tc pitrCase) {
	repo := openPITRRepo(t, tc.storage)
	b := newBroker(t, append(append(repo.env(), "PGBROKER_BACKUP_SCHEDULE_TICK=1s"), tc.env...)...)
	in := firstBaseBackup(t, b, repo, tc.plan)
	at := writeAroundATarget(t, in)
	refuseBadTargets(t, in)
	if tc.copy == copyBeforeRestore {
		provisionCopy(t, in, repo, at, tc.copyCrash)
	}
	timeline := 0
	if tc.plan == businessPlan {
		_, timeline = leaderTimeline(t, in.short)
	}
	restoreInPlace(t, in, at, tc.restoreCrash)
	if tc.plan == businessPlan {
		assertClusterAgain(t, in, repo, at, timeline)
	}
	if tc.copy == copyAfterRestore {
		provisionCopy(t, in, repo, in.momentAfter(t, at, "before the copy target"), tc.copyCrash)
	}
	if tc.rotate {
		rotateS3Keys(t, in, repo, at)
	}
	repo.assertKeysFromVariable(t, in.short)
	assertNoSecretLeak(t, b, in.id, repo.secrets()...)
	deprovision(t, in.c, in.id, in.plan)
	assertGone(t, in.id)
	repo.assertNoStanza(t, in.short)
	for _, secret := range repo.secrets() {
		if strings.Contains(b.logs.String(), secret) {
			t.Error("the S3 secret key appears in the broker log")
		}
	}
}

// pitrInstance is an instance with its first base backup and one binding.
type pitrInstance struct {
	b               *broker
	c               osb.Client
	id, short, plan string
	creds           map[string]any
	earliest        time.Time // earliest_target_time after the first base backup
}

func (in *pitrInstance) url() string { return in.creds["DATABASE_URL"].(string) }

// firstBaseBackup provisions an instance of plan, binds it, and waits for
// its first weekly base backup: a batch job, purged with its Variable
// afterwards, whose backup lands in the repository (on Business taken from
// the standby); the node job's spec holds no private key.
func firstBaseBackup(t *testing.T, b *broker, repo pitrRepo, plan string) *pitrInstance {
	t.Helper()
	in := &pitrInstance{b: b, c: b.client(), id: uuid.NewString(), plan: plan}
	in.short = naming.ShortID(in.id)
	clients := watchBatchClients(t, in.short, "basebackup")
	provisionWithin(t, in.c, in.id, plan, 5*time.Minute)
	list := waitFirstBaseBackup(t, b, in.id)
	in.earliest = *list.PITR.EarliestTargetTime
	t.Logf("first base backup: PITR from %s", in.earliest.Format(time.RFC3339Nano))
	ran := clients()
	assertNoBatchJobsLeft(t, in.id, "basebackup")
	manifest := repo.assertStanza(t, in.short)
	in.creds = bind(t, in.c, in.id, uuid.NewString(), plan, nil)
	if plan == businessPlan {
		assertBackedUpFromTheStandby(t, in, ran, manifest)
	}
	job, _, err := nomadClient(t).Jobs().Info(naming.NodesJobID(in.short), nil)
	if err != nil {
		t.Fatal(err)
	}
	if spec, _ := json.Marshal(job); strings.Contains(string(spec), "PRIVATE KEY") {
		t.Error("the node job's spec holds a private key")
	}
	return in
}

// waitFirstBaseBackup waits (3 minutes at most) until the backups API of
// instance id offers point-in-time restores (earliest_target_time: its
// first base backup succeeded) and returns that answer.
func waitFirstBaseBackup(t *testing.T, b *broker, id string) mgmtapi.BackupList {
	t.Helper()
	var list mgmtapi.BackupList
	for deadline := time.Now().Add(3 * time.Minute); ; time.Sleep(500 * time.Millisecond) {
		b.apiJSON(http.MethodGet, backupsPath(id), &list)
		if list.PITR != nil && list.PITR.EarliestTargetTime != nil {
			return list
		}
		if time.Now().After(deadline) {
			t.Fatalf("no base backup within 3 minutes: %+v", list.PITR)
		}
	}
}

// refuseBadTargets: a point-in-time restore to a malformed target, one in
// the future or before the first base backup, or without target_time, is a
// 4xx saying so.
func refuseBadTargets(t *testing.T, in *pitrInstance) {
	t.Helper()
	for _, bad := range []struct{ body, says string }{
		{`{"target_time":"yesterday"}`, "target_time"},
		{`{"target_time":"` + time.Now().Add(time.Hour).UTC().Format(time.RFC3339) + `"}`, "in the future"},
		{`{"target_time":"` + in.earliest.Add(-time.Minute).Format(time.RFC3339) + `"}`, "before the earliest"},
		{`{"when":"now"}`, "target_time"},
	} {
		status, body := in.b.raw(http.MethodPost, backupsPath(in.id)+"/pitr-restore", bad.body, nil)
		if status/100 != 4 || !strings.Contains(body, bad.says) {
			t.Errorf("pitr-restore %s: %d %s, want a 4xx saying %q", bad.body, status, body, bad.says)
		}
	}
}

// startPITRRestore asks for a point-in-time restore of the instance to
// target and returns its operation.
func (in *pitrInstance) startPITRRestore(t *testing.T, target time.Time) *osb.OperationKey {
	t.Helper()
	status, body := in.b.raw(http.MethodPost, backupsPath(in.id)+"/pitr-restore",
		`{"target_time":"`+target.UTC().Format(time.RFC3339Nano)+`"}`, nil)
	if status != http.StatusAccepted {
		t.Fatalf("pitr-restore to %s: %d %s", target.Format(time.RFC3339Nano), status, body)
	}
	var restore mgmtapi.PITRRestore
	if err := json.Unmarshal([]byte(body), &restore); err != nil {
		t.Fatal(err)
	}
	op := osb.OperationKey(restore.Operation)
	return &op
}

// restoreInPlace restores the instance to at and checks its rows through
// the same credentials, then writes one. With a crash point the broker is
// SIGKILLed there; a row written while it is down survives the attempt after
// the restart (the restore did not run twice) and joins at.byTime.
func restoreInPlace(t *testing.T, in *pitrInstance, at rowsAt, crash string) {
	t.Helper()
	if crash != "" {
		in.b.restartWith("PGBROKER_CRASH_AT", crash)
	}
	op := in.startPITRRestore(t, at.moment)
	if crash != "" {
		if !in.b.crashed(5 * time.Minute) {
			t.Fatalf("the broker did not crash at %s", crash)
		}
		for deadline := time.Now().Add(time.Minute); ; time.Sleep(time.Second) {
			err := writeOnce(in.url(), "INSERT INTO items VALUES (1000, 'after the restore')")
			if err == nil {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("no write through the gateway after the restore: %v", err)
			}
		}
		at.byTime["after the restore"] = 1
		in.b.restartWithout("PGBROKER_CRASH_AT")
	}
	waitOperation(t, in.c, in.id, op, 8*time.Minute)
	app := connect(t, in.url())
	defer app.Close(context.Background())
	if got := itemsChecksum(t, app); got != at.checksum {
		t.Errorf("after the point-in-time restore items checksum %s, want %s (at %s)", got, at.checksum, at.moment)
	}
	assertRowsByTime(t, app, "through DATABASE_URL", at.byTime)
	writeRow(t, app, "writable")
	at.byTime["writable"]++
}

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
	copyShort := naming.ShortID(copyID)
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
		if jobs, _, err := nomadClient(t).Jobs().PrefixList("pg-" + naming.ShortID(id)); err != nil || len(jobs) != 0 {
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
	for _, v := range jobVersions(t, naming.NodesJobID(naming.ShortID(instanceID))) {
		if v.Meta[naming.MetaPITRRestore] != "" {
			n++
		}
	}
	return n
}
