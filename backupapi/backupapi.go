// Package backupapi is the management API of an instance's backups, JSON
// over HTTP under /api/instances/{instance_id}/backups (DESIGN.md
// "Management API"; shapes in mgmtapi/openapi.yaml, the one document of the
// management API):
//
//	GET  /api/instances/{instance_id}/backups                         list, schedule and health
//	POST /api/instances/{instance_id}/backups                         take a manual dump (202, poll it)
//	GET  /api/instances/{instance_id}/backups/{backup_id}             one backup
//	GET  /api/instances/{instance_id}/backups/{backup_id}/download    the dump, pg_restore's custom format
//	POST /api/instances/{instance_id}/backups/{backup_id}/restore     restore it into the instance (202, an operation)
//	POST /api/instances/{instance_id}/backups/pitr-restore            point-in-time restore, {"target_time": RFC 3339} (202, an operation)
//
// The caller mounts it behind authentication. Errors are
// {"error": code, "description": sentence naming what was wrong}; a 4xx
// changes nothing.
package backupapi

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

	"github.com/pgbroker/pgbroker/backupstore"
	"github.com/pgbroker/pgbroker/catalog"
	"github.com/pgbroker/pgbroker/naming"
	"github.com/pgbroker/pgbroker/scheduler"
	"github.com/pgbroker/pgbroker/store"
)

// Prefix is where the API is mounted; {instance_id} is the OSB instance id.
const Prefix = "/api/instances/{instance_id}/backups"

// Options wire the API.
type Options struct {
	Store         *store.Store
	Catalog       *catalog.Catalog
	Storage       backupstore.Storage
	EnqueueBackup store.EnqueueFunc // enqueues a dump job in the recording transaction
	EnqueueOp     store.EnqueueFunc // enqueues an operation job (restore)
	MaxAge        time.Duration     // a last successful dump older than this is stale (26 h)
	PITR          bool              // point-in-time recovery is on (WAL archiving, base backups)
	Log           *slog.Logger
	// WriteTimeout is the server's write timeout: a download moves its
	// deadline forward by this much before each write (ServeDump).
	WriteTimeout time.Duration
}

type api struct{ Options }

// New returns the handler of every route under Prefix.
func New(o Options) http.Handler {
	a := &api{o}
	r := mux.NewRouter()
	r.HandleFunc(Prefix, a.list).Methods(http.MethodGet)
	r.HandleFunc(Prefix, a.create).Methods(http.MethodPost)
	r.HandleFunc(Prefix+"/pitr-restore", a.pitrRestore).Methods(http.MethodPost)
	r.HandleFunc(Prefix+"/{backup_id}", a.get).Methods(http.MethodGet)
	r.HandleFunc(Prefix+"/{backup_id}/download", a.download).Methods(http.MethodGet)
	r.HandleFunc(Prefix+"/{backup_id}/restore", a.restore).Methods(http.MethodPost)
	r.NotFoundHandler = http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		writeError(w, http.StatusNotFound, "NotFound", "no such route under /api/instances/{instance_id}/backups")
	})
	r.MethodNotAllowedHandler = http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		writeError(w, http.StatusMethodNotAllowed, "MethodNotAllowed", "method not allowed on this route")
	})
	return r
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

// Health says whether the instance's dumps are current.
type Health struct {
	LastSuccessAt *time.Time `json:"last_success_at"` // finished_at of the newest succeeded dump; null when none
	MaxAgeSeconds int64      `json:"max_age_seconds"` // the threshold (PGBROKER_BACKUP_MAX_AGE)
	Stale         bool       `json:"stale"`           // the newest succeeded dump (or, without one, the instance) is older than the threshold
}

// Schedule is the instance's daily dump time.
type Schedule struct {
	BackupTime     string    `json:"backup_time"`      // "HH:MM"
	BackupTimeZone string    `json:"backup_time_zone"` // IANA name
	NextRunAt      time.Time `json:"next_run_at"`
}

// PITR is the window a point-in-time restore may target.
type PITR struct {
	WindowDays         int        `json:"window_days"`          // the plan's PITR window
	EarliestTargetTime *time.Time `json:"earliest_target_time"` // null until the first base backup succeeded
}

// List is the answer of GET /api/instances/{instance_id}/backups.
type List struct {
	Backups  []Backup  `json:"backups"` // newest first
	Health   Health    `json:"health"`
	Schedule *Schedule `json:"schedule,omitempty"` // null on plans without daily dumps or once deprovisioned
	PITR     *PITR     `json:"pitr,omitempty"`     // null on plans without PITR, when PITR is off, or once deprovisioned
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

func (a *api) list(w http.ResponseWriter, r *http.Request) {
	inst, plan, ok := a.instance(w, r)
	if !ok {
		return
	}
	backups, err := a.Store.ListBackups(r.Context(), inst.ID)
	if err != nil {
		stateDBError(w, err)
		return
	}
	out := List{Backups: make([]Backup, 0, len(backups)), Health: Health{MaxAgeSeconds: int64(a.MaxAge / time.Second)}}
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
			out.Schedule = &Schedule{BackupTime: d.Time, BackupTimeZone: d.Zone, NextRunAt: d.Next(time.Now())}
		}
	}
	if a.PITR && plan.Backups.PITRDays > 0 && !inst.Gone() {
		out.PITR = &PITR{WindowDays: plan.Backups.PITRDays}
		if earliest, ok, err := a.earliestTarget(r.Context(), inst, plan); err == nil && ok {
			out.PITR.EarliestTargetTime = &earliest
		}
	}
	writeJSON(w, http.StatusOK, out)
}

// earliestTarget is the earliest time a point-in-time restore can reach:
// the first base backup's end, or the start of the plan's window.
func (a *api) earliestTarget(ctx context.Context, inst store.Instance, plan catalog.Plan) (time.Time, bool, error) {
	first, ok, err := a.Store.FirstBaseBackup(ctx, inst.ID)
	if err != nil || !ok {
		return time.Time{}, false, err
	}
	window := time.Now().Add(-time.Duration(plan.Backups.PITRDays) * 24 * time.Hour)
	if first.Before(window) {
		first = window
	}
	return first.UTC(), true, nil
}

func (a *api) pitrRestore(w http.ResponseWriter, r *http.Request) {
	inst, plan, ok := a.instance(w, r)
	if !ok || !a.writable(w, r, inst, plan, "restore to a point in time") {
		return
	}
	if !a.PITR || plan.Backups.PITRDays == 0 {
		writeError(w, http.StatusUnprocessableEntity, "PlanHasNoPITR",
			fmt.Sprintf("point-in-time recovery is not available on plan %s of this broker", inst.PlanID))
		return
	}
	var req PITRRestoreRequest
	dec := json.NewDecoder(r.Body)
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil {
		writeError(w, http.StatusBadRequest, "BadRequest", `the body must be a JSON object {"target_time": "<RFC 3339 time>"}: `+err.Error())
		return
	}
	target, err := time.Parse(time.RFC3339Nano, req.TargetTime)
	if err != nil {
		writeError(w, http.StatusBadRequest, "BadRequest", fmt.Sprintf("target_time %q must be an RFC 3339 time, e.g. \"2026-11-23T16:50:00Z\"", req.TargetTime))
		return
	}
	target = target.UTC().Truncate(time.Microsecond)
	if target.After(time.Now()) {
		writeError(w, http.StatusUnprocessableEntity, "TargetTimeOutOfRange", fmt.Sprintf("target_time %s is in the future", target.Format(time.RFC3339Nano)))
		return
	}
	earliest, ok, err := a.earliestTarget(r.Context(), inst, plan)
	if err != nil {
		stateDBError(w, err)
		return
	}
	if !ok || target.Before(earliest) {
		msg := fmt.Sprintf("target_time %s is before the earliest time a restore can reach", target.Format(time.RFC3339Nano))
		if ok {
			msg += " (" + earliest.Format(time.RFC3339) + ")"
		} else {
			msg += ": the first base backup has not been taken yet"
		}
		writeError(w, http.StatusUnprocessableEntity, "TargetTimeOutOfRange", msg)
		return
	}
	params, _ := json.Marshal(map[string]time.Time{"target_time": target})
	op := store.Operation{ID: uuid.NewString(), InstanceID: inst.ID, Kind: store.KindPITR, PlanID: inst.PlanID,
		Parameters: params, Description: "queued: restore to " + target.Format(time.RFC3339Nano)}
	switch err := a.Store.StartOperation(r.Context(), op, a.EnqueueOp); {
	case errors.Is(err, store.ErrOperationInFlight):
		writeError(w, http.StatusConflict, "ConcurrencyError", "another operation is in progress on this instance: retry once it finished")
		return
	case errors.Is(err, store.ErrNotFound):
		writeError(w, http.StatusGone, "Gone", fmt.Sprintf("instance %s was deprovisioned", inst.ID))
		return
	case err != nil:
		stateDBError(w, err)
		return
	}
	a.Log.InfoContext(r.Context(), "point-in-time restore accepted", slog.String("instance_id", inst.ID), slog.String("operation", op.ID),
		slog.Time("target_time", target))
	writeJSON(w, http.StatusAccepted, PITRRestore{Operation: op.ID, State: string(store.InProgress), TargetTime: target})
}

func (a *api) create(w http.ResponseWriter, r *http.Request) {
	inst, plan, ok := a.instance(w, r)
	if !ok || !a.writable(w, r, inst, plan, "take a manual dump") {
		return
	}
	id := uuid.NewString()
	b := store.Backup{ID: id, InstanceID: inst.ID, Kind: store.BackupManual, StorageKey: naming.DumpKey(inst.ShortID, id)}
	if _, err := a.Store.CreateBackup(r.Context(), b, a.EnqueueBackup); err != nil {
		if errors.Is(err, store.ErrNotFound) {
			writeError(w, http.StatusGone, "Gone", fmt.Sprintf("instance %s was deprovisioned", inst.ID))
			return
		}
		stateDBError(w, err)
		return
	}
	a.Log.InfoContext(r.Context(), "manual backup asked", slog.String("instance_id", inst.ID), slog.String("backup_id", id))
	stored, err := a.Store.GetBackup(r.Context(), id)
	if err != nil {
		stateDBError(w, err)
		return
	}
	w.Header().Set("Location", backupURL(inst.ID, id))
	writeJSON(w, http.StatusAccepted, view(stored))
}

func (a *api) get(w http.ResponseWriter, r *http.Request) {
	inst, _, ok := a.instance(w, r)
	if !ok {
		return
	}
	if b, ok := a.backup(w, r, inst); ok {
		writeJSON(w, http.StatusOK, view(b))
	}
}

func (a *api) download(w http.ResponseWriter, r *http.Request) {
	inst, _, ok := a.instance(w, r)
	if !ok {
		return
	}
	b, ok := a.backup(w, r, inst)
	if !ok {
		return
	}
	if b.Status != store.BackupSucceeded {
		writeError(w, http.StatusConflict, "BackupNotReady", fmt.Sprintf("backup_id %s is %s: only a succeeded backup can be downloaded", b.ID, b.Status))
		return
	}
	rc, _, err := a.Storage.Open(r.Context(), b.StorageKey)
	if errors.Is(err, backupstore.ErrNotFound) {
		writeError(w, http.StatusGone, "Gone", fmt.Sprintf("the dump of backup_id %s is no longer in the backup storage", b.ID))
		return
	}
	if err != nil {
		writeError(w, http.StatusInternalServerError, "StorageError", "read the dump from the backup storage: "+err.Error())
		return
	}
	defer rc.Close()
	ServeDump(w, r, rc, fmt.Sprintf("%s-%s.dump", inst.ShortID, b.ID), b.SHA256, a.WriteTimeout)
}

func (a *api) restore(w http.ResponseWriter, r *http.Request) {
	inst, plan, ok := a.instance(w, r)
	if !ok || !a.writable(w, r, inst, plan, "restore a dump") {
		return
	}
	b, ok := a.backup(w, r, inst)
	if !ok {
		return
	}
	if b.Status != store.BackupSucceeded {
		writeError(w, http.StatusConflict, "BackupNotReady", fmt.Sprintf("backup_id %s is %s: only a succeeded backup can be restored", b.ID, b.Status))
		return
	}
	params, _ := json.Marshal(map[string]string{"backup_id": b.ID})
	op := store.Operation{ID: uuid.NewString(), InstanceID: inst.ID, Kind: store.KindRestore, PlanID: inst.PlanID,
		Parameters: params, Description: "queued: restore backup " + b.ID}
	switch err := a.Store.StartOperation(r.Context(), op, a.EnqueueOp); {
	case errors.Is(err, store.ErrOperationInFlight):
		writeError(w, http.StatusConflict, "ConcurrencyError", "another operation is in progress on this instance: retry once it finished")
		return
	case errors.Is(err, store.ErrNotFound):
		writeError(w, http.StatusGone, "Gone", fmt.Sprintf("instance %s was deprovisioned", inst.ID))
		return
	case err != nil:
		stateDBError(w, err)
		return
	}
	a.Log.InfoContext(r.Context(), "restore accepted", slog.String("instance_id", inst.ID), slog.String("operation", op.ID), slog.String("backup_id", b.ID))
	writeJSON(w, http.StatusAccepted, Restore{Operation: op.ID, State: string(store.InProgress), BackupID: b.ID})
}

// instance loads the instance of the path and its plan, or answers 404.
func (a *api) instance(w http.ResponseWriter, r *http.Request) (store.Instance, catalog.Plan, bool) {
	id := mux.Vars(r)["instance_id"]
	inst, err := a.Store.GetInstance(r.Context(), id)
	if errors.Is(err, store.ErrNotFound) {
		writeError(w, http.StatusNotFound, "NotFound", fmt.Sprintf("instance_id %q is not an instance of this broker", id))
		return store.Instance{}, catalog.Plan{}, false
	}
	if err != nil {
		stateDBError(w, err)
		return store.Instance{}, catalog.Plan{}, false
	}
	_, plan, _ := a.Catalog.Plan(inst.PlanID)
	return inst, plan, true
}

// writable answers 410, 422 or 409 unless the instance is live, on a plan
// with backups, and provisioned.
func (a *api) writable(w http.ResponseWriter, r *http.Request, inst store.Instance, plan catalog.Plan, what string) bool {
	if inst.Gone() {
		writeError(w, http.StatusGone, "Gone", fmt.Sprintf("instance %s was deprovisioned: cannot %s", inst.ID, what))
		return false
	}
	if plan.Backups.ManualKept == 0 && !plan.Backups.Daily {
		writeError(w, http.StatusUnprocessableEntity, "PlanHasNoBackups",
			fmt.Sprintf("plan %s has no backups: cannot %s; change to a Starter or Business plan", inst.PlanID, what))
		return false
	}
	op, err := a.Store.LatestOperation(r.Context(), inst.ID)
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		stateDBError(w, err)
		return false
	}
	if err == nil && op.Kind == store.KindProvision && op.State != store.Succeeded {
		writeError(w, http.StatusConflict, "InstanceNotReady", fmt.Sprintf("instance %s is not provisioned (%s): cannot %s", inst.ID, op.State, what))
		return false
	}
	return true
}

// backup loads the backup of the path, or answers 404 naming backup_id.
func (a *api) backup(w http.ResponseWriter, r *http.Request, inst store.Instance) (store.Backup, bool) {
	id := mux.Vars(r)["backup_id"]
	b, err := a.Store.GetBackup(r.Context(), id)
	if errors.Is(err, store.ErrNotFound) || errors.Is(err, store.ErrInvalidValue) || (err == nil && b.InstanceID != inst.ID) {
		writeError(w, http.StatusNotFound, "NotFound", fmt.Sprintf("backup_id %q is not a backup of instance %s", id, inst.ID))
		return store.Backup{}, false
	}
	if err != nil {
		stateDBError(w, err)
		return store.Backup{}, false
	}
	return b, true
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

func stateDBError(w http.ResponseWriter, err error) {
	if errors.Is(err, store.ErrInvalidValue) {
		writeError(w, http.StatusBadRequest, "BadRequest", err.Error()+": send UTF-8 text without NUL characters")
		return
	}
	if errors.Is(err, context.Canceled) {
		return
	}
	writeError(w, http.StatusInternalServerError, "StateDatabaseError", "the state database failed: "+err.Error())
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(v)
}

func writeError(w http.ResponseWriter, status int, code, description string) {
	writeJSON(w, status, map[string]string{"error": code, "description": description})
}
