package mgmtapi

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"time"

	"github.com/google/uuid"
	"github.com/gorilla/mux"

	"github.com/pgbroker/pgbroker/catalog"
	"github.com/pgbroker/pgbroker/naming"
	"github.com/pgbroker/pgbroker/operation"
	"github.com/pgbroker/pgbroker/pgversion"
	"github.com/pgbroker/pgbroker/scheduler"
	"github.com/pgbroker/pgbroker/store"
)

// backupRoutes serve the backups of an instance (DESIGN.md "Backups"): its
// daily and manual dumps, their download (download.go), restore, and
// point-in-time restore. A deprovisioned instance's backups stay listed
// until retention removes them; taking or restoring one answers 410.
type backupRoutes struct{ *API }

func (a backupRoutes) routes() []route {
	return []route{
		{http.MethodGet, "/backups", a.listBackups},
		{http.MethodPost, "/backups", a.createBackup},
		{http.MethodPost, "/backups/pitr-restore", a.pitrRestore},
		{http.MethodGet, "/backups/{backup_id}", a.getBackup},
		{http.MethodGet, "/backups/{backup_id}/download", a.download},
		{http.MethodPost, "/backups/{backup_id}/restore", a.restore},
	}
}

// Backup is one backup as the API shows it.
type Backup struct {
	ID          string     `json:"id"`
	InstanceID  string     `json:"instance_id"`
	Kind        string     `json:"kind"`   // "daily" or "manual"
	Status      string     `json:"status"` // "pending", "running", "succeeded", "failed"
	ScheduledAt *time.Time `json:"scheduled_at,omitempty"`
	CreatedAt   time.Time  `json:"created_at"`
	StartedAt   *time.Time `json:"started_at,omitempty"`
	FinishedAt  *time.Time `json:"finished_at,omitempty"`
	SizeBytes   int64      `json:"size_bytes,omitempty"`
	SHA256      string     `json:"sha256,omitempty"`
	Error       string     `json:"error,omitempty"`
	DownloadURL string     `json:"download_url,omitempty"` // set once succeeded
}

// BackupHealth says whether the instance's dumps are current.
type BackupHealth struct {
	LastSuccessAt *time.Time `json:"last_success_at"` // finished_at of the newest succeeded dump; null when none
	MaxAgeSeconds int64      `json:"max_age_seconds"` // the threshold (PGBROKER_BACKUP_MAX_AGE)
	Stale         bool       `json:"stale"`           // the newest succeeded dump (or, without one, the instance) is older than the threshold
}

// BackupSchedule is the instance's daily dump time.
type BackupSchedule struct {
	BackupTime     string    `json:"backup_time"`      // "HH:MM"
	BackupTimeZone string    `json:"backup_time_zone"` // IANA name
	NextRunAt      time.Time `json:"next_run_at"`
}

// PITR is the window a point-in-time restore may target.
type PITR struct {
	WindowDays         int        `json:"window_days"`          // the plan's PITR window
	EarliestTargetTime *time.Time `json:"earliest_target_time"` // null until the first base backup succeeded
}

// BackupList is the answer of GET /api/instances/{instance_id}/backups.
type BackupList struct {
	Backups  []Backup        `json:"backups"` // newest first
	Health   BackupHealth    `json:"health"`
	Schedule *BackupSchedule `json:"schedule,omitempty"` // null on plans without daily dumps or once deprovisioned
	PITR     *PITR           `json:"pitr,omitempty"`     // null on plans without PITR, when PITR is off, or once deprovisioned
	// PITROff says why a plan with PITR has none on this instance: its
	// PostgreSQL major (after a major upgrade) is one the clients'
	// pgBackRest does not archive. Empty otherwise.
	PITROff string `json:"pitr_off,omitempty"`
}

// pitrOffReason says why point-in-time recovery is off on an instance on
// PostgreSQL version (pgversion.Archived is false for it). Source: issue 15
// (after a major upgrade, GET backups and the dashboard say what became of
// PITR).
func pitrOffReason(version string) string {
	return fmt.Sprintf("point-in-time recovery is off on PostgreSQL %s: the clients' pgBackRest archives majors up to %d. "+
		"Daily dumps go on, and dumps taken before a major upgrade stay restorable", version, pgversion.PgBackRestMaxMajor)
}

// PITRRestoreRequest is the body of POST .../backups/pitr-restore.
type PITRRestoreRequest struct {
	TargetTime string `json:"target_time"` // RFC 3339, e.g. "2026-11-23T16:50:00.123456Z"
}

// Restore is the answer of POST .../restore: the operation, polled with OSB
// last_operation (?operation=<operation>).
type Restore struct {
	Operation string `json:"operation"`
	State     string `json:"state"`
	BackupID  string `json:"backup_id"`
}

// PITRRestore is the answer of POST .../pitr-restore: the operation, polled
// with OSB last_operation (?operation=<operation>).
type PITRRestore struct {
	Operation  string    `json:"operation"`
	State      string    `json:"state"`
	TargetTime time.Time `json:"target_time"` // UTC, microseconds
}

// GET /api/instances/{instance_id}/backups: 200 with the backups, their
// health, the daily schedule and the PITR window.
func (a backupRoutes) listBackups(w http.ResponseWriter, r *http.Request) {
	inst, plan, err := a.withPlan(r)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	backups, err := a.Store.Backups().ListBackups(r.Context(), inst.ID)
	if err != nil {
		a.fail(w, r, stateDB("list the backups", err))
		return
	}
	out := BackupList{Backups: make([]Backup, 0, len(backups)), Health: BackupHealth{MaxAgeSeconds: int64(a.MaxAge / time.Second)}}
	for _, b := range backups {
		out.Backups = append(out.Backups, view(b))
		if b.Status == store.BackupSucceeded && b.FinishedAt != nil && (out.Health.LastSuccessAt == nil || b.FinishedAt.After(*out.Health.LastSuccessAt)) {
			out.Health.LastSuccessAt = b.FinishedAt
		}
	}
	since := inst.CreatedAt
	if out.Health.LastSuccessAt != nil {
		since = *out.Health.LastSuccessAt
	}
	out.Health.Stale = time.Since(since) > a.MaxAge
	if plan.Backups.Daily && !inst.Gone() {
		if d, err := schedule(inst); err == nil {
			out.Schedule = &BackupSchedule{BackupTime: d.Time, BackupTimeZone: d.Zone, NextRunAt: d.Next(time.Now())}
		}
	}
	switch {
	case !a.PITR || plan.Backups.PITRDays == 0 || inst.Gone():
	case !pgversion.Archived(inst.PostgresVersion):
		out.PITROff = pitrOffReason(inst.PostgresVersion)
	default:
		out.PITR = &PITR{WindowDays: plan.Backups.PITRDays}
		if earliest, ok, err := a.earliestTarget(r.Context(), inst, plan); err == nil && ok {
			out.PITR.EarliestTargetTime = &earliest
		}
	}
	writeJSON(w, http.StatusOK, out)
}

// POST /api/instances/{instance_id}/backups: 202 with the manual dump,
// pending; 410, 422 or 409 when the instance cannot take one (writable).
func (a backupRoutes) createBackup(w http.ResponseWriter, r *http.Request) {
	inst, err := a.writable(r, "take a manual dump")
	if err != nil {
		a.fail(w, r, err)
		return
	}
	id := uuid.NewString()
	b := store.Backup{ID: id, InstanceID: inst.ID, Kind: store.BackupManual, StorageKey: naming.DumpKey(inst.ShortID, id)}
	if _, err := a.Store.Backups().CreateBackup(r.Context(), b, a.EnqueueBackup); errors.Is(err, store.ErrNotFound) {
		a.fail(w, r, failure(http.StatusGone, "Gone", "instance %s was deprovisioned", inst.ID))
		return
	} else if err != nil {
		a.fail(w, r, stateDB("record the backup", err))
		return
	}
	a.log.InfoContext(r.Context(), "manual backup asked", slog.String("instance_id", inst.ID), slog.String("backup_id", id))
	stored, err := a.Store.Backups().GetBackup(r.Context(), id)
	if err != nil {
		a.fail(w, r, stateDB("read the backup back", err))
		return
	}
	w.Header().Set("Location", backupURL(inst.ID, id))
	writeJSON(w, http.StatusAccepted, view(stored))
}

// GET /api/instances/{instance_id}/backups/{backup_id}: 200 with the backup.
func (a backupRoutes) getBackup(w http.ResponseWriter, r *http.Request) {
	inst, err := a.stored(r)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	b, err := a.backup(r, inst)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, view(b))
}

// POST /api/instances/{instance_id}/backups/{backup_id}/restore: 202 with the
// restore operation; 409 unless the backup succeeded.
func (a backupRoutes) restore(w http.ResponseWriter, r *http.Request) {
	inst, err := a.writable(r, "restore a dump")
	if err != nil {
		a.fail(w, r, err)
		return
	}
	b, err := a.succeeded(r, inst, "restored")
	if err != nil {
		a.fail(w, r, err)
		return
	}
	op, err := a.startOperation(r.Context(), inst, store.KindRestore, operation.Encode(operation.Restore{BackupID: b.ID}), "queued: restore backup "+b.ID)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	a.log.InfoContext(r.Context(), "restore accepted", slog.String("instance_id", inst.ID), slog.String("operation", op.ID), slog.String("backup_id", b.ID))
	writeJSON(w, http.StatusAccepted, Restore{Operation: op.ID, State: string(store.InProgress), BackupID: b.ID})
}

// POST /api/instances/{instance_id}/backups/pitr-restore: 202 with the
// point-in-time restore operation; 400 for a body that is not
// {"target_time": RFC 3339}; 422 without PITR or outside the window.
func (a backupRoutes) pitrRestore(w http.ResponseWriter, r *http.Request) {
	inst, err := a.writable(r, "restore to a point in time")
	if err != nil {
		a.fail(w, r, err)
		return
	}
	target, err := a.pitrTarget(r, inst)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	op, err := a.startOperation(r.Context(), inst, store.KindPITR, operation.Encode(operation.PITR{TargetTime: target}),
		"queued: restore to "+target.Format(time.RFC3339Nano))
	if err != nil {
		a.fail(w, r, err)
		return
	}
	a.log.InfoContext(r.Context(), "point-in-time restore accepted", slog.String("instance_id", inst.ID), slog.String("operation", op.ID),
		slog.Time("target_time", target))
	writeJSON(w, http.StatusAccepted, PITRRestore{Operation: op.ID, State: string(store.InProgress), TargetTime: target})
}

// pitrTarget reads the target time of a point-in-time restore of inst from
// the body (UTC, microseconds) and checks the plan offers PITR and the time
// lies in its window.
func (a backupRoutes) pitrTarget(r *http.Request, inst store.Instance) (time.Time, error) {
	plan := a.plan(inst)
	if !a.PITR || plan.Backups.PITRDays == 0 {
		return time.Time{}, failure(http.StatusUnprocessableEntity, "PlanHasNoPITR",
			"point-in-time recovery is not available on plan %s of this broker", inst.PlanID)
	}
	if !pgversion.Archived(inst.PostgresVersion) {
		return time.Time{}, failure(http.StatusUnprocessableEntity, "PlanHasNoPITR", "%s", pitrOffReason(inst.PostgresVersion))
	}
	var req PITRRestoreRequest
	if err := readBody(r, &req); err != nil {
		var ae *apiError
		if errors.As(err, &ae) && ae.Status == http.StatusBadRequest {
			ae.Msg = `the body must be a JSON object {"target_time": "<RFC 3339 time>"}: ` + ae.Msg
		}
		return time.Time{}, err
	}
	target, err := time.Parse(time.RFC3339Nano, req.TargetTime)
	if err != nil {
		return time.Time{}, failure(http.StatusBadRequest, "TargetTime", "target_time %q must be an RFC 3339 time, e.g. \"2026-11-23T16:50:00Z\"", req.TargetTime)
	}
	target = target.UTC().Truncate(time.Microsecond)
	if target.After(time.Now()) {
		return time.Time{}, failure(http.StatusUnprocessableEntity, "TargetTimeOutOfRange", "target_time %s is in the future", target.Format(time.RFC3339Nano))
	}
	earliest, ok, err := a.earliestTarget(r.Context(), inst, plan)
	if err != nil {
		return time.Time{}, stateDB("read the first base backup", err)
	}
	if !ok {
		return time.Time{}, failure(http.StatusUnprocessableEntity, "TargetTimeOutOfRange",
			"target_time %s is before the earliest time a restore can reach: the first base backup has not been taken yet", target.Format(time.RFC3339Nano))
	}
	if target.Before(earliest) {
		return time.Time{}, failure(http.StatusUnprocessableEntity, "TargetTimeOutOfRange",
			"target_time %s is before the earliest time a restore can reach (%s)", target.Format(time.RFC3339Nano), earliest.Format(time.RFC3339))
	}
	return target, nil
}

// earliestTarget is the earliest time a point-in-time restore can reach:
// the first base backup's end, or the start of the plan's window.
func (a backupRoutes) earliestTarget(ctx context.Context, inst store.Instance, plan catalog.Plan) (time.Time, bool, error) {
	first, ok, err := a.Store.Backups().FirstBaseBackup(ctx, inst.ID)
	if err != nil || !ok {
		return time.Time{}, false, err
	}
	window := time.Now().Add(-time.Duration(plan.Backups.PITRDays) * 24 * time.Hour)
	if first.Before(window) {
		first = window
	}
	return first.UTC(), true, nil
}

// withPlan returns the instance of the path, deprovisioned or not, and its
// plan.
func (a backupRoutes) withPlan(r *http.Request) (store.Instance, catalog.Plan, error) {
	inst, err := a.stored(r)
	if err != nil {
		return inst, catalog.Plan{}, err
	}
	return inst, a.plan(inst), nil
}

// plan is inst's plan; the zero plan (no backups) when the catalog no
// longer has it.
func (a backupRoutes) plan(inst store.Instance) catalog.Plan {
	_, plan, _ := a.Catalog.Plan(inst.PlanID)
	return plan
}

// writable returns the instance of the path when it may take or restore a
// backup: 410 once deprovisioned, 422 on a plan without backups, 409 until
// it is provisioned. what names the change refused.
func (a backupRoutes) writable(r *http.Request, what string) (store.Instance, error) {
	inst, plan, err := a.withPlan(r)
	if err != nil {
		return inst, err
	}
	if inst.Gone() {
		return inst, failure(http.StatusGone, "Gone", "instance %s was deprovisioned: cannot %s", inst.ID, what)
	}
	if plan.Backups.ManualKept == 0 && !plan.Backups.Daily {
		return inst, failure(http.StatusUnprocessableEntity, "PlanHasNoBackups",
			"plan %s has no backups: cannot %s; change to a Starter or Business plan", inst.PlanID, what)
	}
	op, err := a.Store.Instances().LatestOperation(r.Context(), inst.ID)
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		return inst, stateDB("read the instance's latest operation", err)
	}
	if err == nil && op.Kind == store.KindProvision && op.State != store.Succeeded {
		return inst, failure(http.StatusConflict, "InstanceNotReady", "instance %s is not provisioned (%s): cannot %s", inst.ID, op.State, what)
	}
	return inst, nil
}

// backup returns the backup of the path, a backup of inst (404 naming
// backup_id).
func (a backupRoutes) backup(r *http.Request, inst store.Instance) (store.Backup, error) {
	id := mux.Vars(r)["backup_id"]
	b, err := a.Store.Backups().GetBackup(r.Context(), id)
	if errors.Is(err, store.ErrNotFound) || errors.Is(err, store.ErrInvalidValue) || (err == nil && b.InstanceID != inst.ID) {
		return store.Backup{}, failure(http.StatusNotFound, "BackupNotFound", "backup_id %q is not a backup of instance %s", id, inst.ID)
	}
	if err != nil {
		return store.Backup{}, stateDB("read the backup", err)
	}
	return b, nil
}

// succeeded returns the backup of the path when it succeeded (409 naming
// its status otherwise); done says what only a succeeded backup can be.
func (a backupRoutes) succeeded(r *http.Request, inst store.Instance, done string) (store.Backup, error) {
	b, err := a.backup(r, inst)
	if err == nil && b.Status != store.BackupSucceeded {
		err = failure(http.StatusConflict, "BackupNotReady", "backup_id %s is %s: only a succeeded backup can be %s", b.ID, b.Status, done)
	}
	return b, err
}

func schedule(inst store.Instance) (scheduler.Daily, error) {
	var params map[string]any
	_ = json.Unmarshal(inst.Parameters, &params)
	return scheduler.FromParameters(params)
}

func view(b store.Backup) Backup {
	v := Backup{ID: b.ID, InstanceID: b.InstanceID, Kind: string(b.Kind), Status: string(b.Status), ScheduledAt: b.ScheduledAt,
		CreatedAt: b.CreatedAt, StartedAt: b.StartedAt, FinishedAt: b.FinishedAt, SizeBytes: b.SizeBytes, SHA256: b.SHA256, Error: b.Error}
	if b.Status == store.BackupSucceeded {
		v.DownloadURL = backupURL(b.InstanceID, b.ID) + "/download"
	}
	return v
}

func backupURL(instanceID, backupID string) string {
	return "/api/instances/" + url.PathEscape(instanceID) + "/backups/" + url.PathEscape(backupID)
}
