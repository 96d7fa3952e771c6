// Package mgmtapi is the management API owners use beyond OSB (DESIGN.md
// "Management API"): the users, extensions and backups of an instance, as
// JSON under /api/instances/{instance_id}/…, described by openapi.yaml in
// this folder and served at /api/openapi.yaml. httpapi mounts Handler at
// /api/ behind the broker's basic auth and body limit.
//
// Every rule broken gets a 4xx naming the rule and changes nothing. Errors
// are {"error": rule, "description": sentence}. Changes that restart the
// node (extensions needing shared_preload_libraries) and restores become OSB
// operations, carried out by the worker and shown by last_operation.
//
// The package is a front door: it reads and records state in the store and
// reaches the instance's database through the interfaces below, never
// through the executor's packages (provisioner, pgadmin, backup).
package mgmtapi

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"slices"
	"time"

	"github.com/google/uuid"
	"github.com/gorilla/mux"

	"github.com/pgbroker/pgbroker/catalog"
	"github.com/pgbroker/pgbroker/extensions"
	"github.com/pgbroker/pgbroker/pgversion"
	"github.com/pgbroker/pgbroker/stats"
	"github.com/pgbroker/pgbroker/store"
	"github.com/pgbroker/pgbroker/users"
)

// Users is what the API needs to manage an instance's database users
// (instances.Service). Errors: users.ErrUserNotFound (User),
// users.ErrUserExists (CreateUser).
type Users interface {
	Users(ctx context.Context, inst store.Instance) ([]users.User, error)
	User(ctx context.Context, inst store.Instance, username string) (users.User, error)
	CreateUser(ctx context.Context, inst store.Instance, username, password string, readOnly bool) error
	SetUserPassword(ctx context.Context, inst store.Instance, username, password string) error
	DeleteUser(ctx context.Context, inst store.Instance, username string) error
}

// Extensions is what the API needs to manage the extensions of an
// instance's database (instances.Service). Errors of DisableExtensions wrap
// extensions.ErrExtensionInUse when objects depend on one.
type Extensions interface {
	Extensions(ctx context.Context, inst store.Instance) ([]extensions.InstalledExtension, error)
	EnableExtensions(ctx context.Context, inst store.Instance, names []string) error
	DisableExtensions(ctx context.Context, inst store.Instance, names []string) error
}

// Dumps is where the API reads dumps for download (backup.Storage).
type Dumps interface {
	// Open returns the dump at key and its size in bytes; the reader seeks,
	// so a download serves byte ranges. An error wrapping fs.ErrNotExist
	// says there is no dump at key.
	Open(ctx context.Context, key string) (io.ReadSeekCloser, int64, error)
}

// Options wire the API.
type Options struct {
	Store      *store.Store
	Catalog    *catalog.Catalog
	Users      Users
	Extensions Extensions
	Queries    Queries
	Members    Members // nil: the summary names no members
	Dumps      Dumps
	Stats      Stats        // current figures
	Metrics    MetricSeries // figures over time
	Tiers      []stats.Tier // the tiers Metrics keeps (sampler.Sampler.Tiers), answering ?range=
	// EnqueueOp puts an operation's job (restore, extension change) on the
	// durable queue in the transaction that records it (worker.Runner.Enqueue).
	EnqueueOp store.EnqueueFunc
	// EnqueueBackup does the same for a manual dump (worker.Runner.EnqueueBackup).
	EnqueueBackup store.EnqueueFunc
	MaxAge        time.Duration // a last successful dump older than this is stale (PGBROKER_BACKUP_MAX_AGE)
	PITR          bool          // point-in-time recovery is on (WAL archiving, base backups)
	// Versions are the PostgreSQL versions the broker offers
	// (PGBROKER_POSTGRES_VERSIONS): the summary's upgrades and POST /upgrade.
	Versions pgversion.Offered
	// WriteTimeout is the server's write timeout: a download moves its
	// deadline forward by this much before each write (ServeDump).
	WriteTimeout time.Duration
	Log          *slog.Logger
}

// API serves the management API.
type API struct {
	Options
	log *slog.Logger
}

// New returns the API; a nil Log discards.
func New(o Options) *API {
	log := o.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &API{Options: o, log: log}
}

// Handler returns the routes of openapi.yaml, the document itself at
// DocumentPath included. Unknown paths get a JSON 404, known paths with
// another method a JSON 405.
func (a *API) Handler() http.Handler {
	r := mux.NewRouter()
	r.NotFoundHandler = http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		writeError(w, http.StatusNotFound, "NotFound", "no such management API path")
	})
	r.MethodNotAllowedHandler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		writeError(w, http.StatusMethodNotAllowed, "MethodNotAllowed", r.Method+" is not allowed on this path")
	})
	r.HandleFunc(DocumentPath, serveOpenAPI).Methods(http.MethodGet)
	for _, rt := range slices.Concat(userRoutes{a}.routes(), extensionRoutes{a}.routes(), backupRoutes{a}.routes(), statsRoutes{a}.routes(),
		queryRoutes{a}.routes(), settingRoutes{a}.routes()) {
		r.HandleFunc("/api/instances/{instance_id}"+rt.path, rt.handler).Methods(rt.method)
	}
	return r
}

// route is one method and path under /api/instances/{instance_id} and the
// handler that serves it.
type route struct {
	method, path string
	handler      http.HandlerFunc
}

// stored returns the instance of the path, deprovisioned or not (404 naming
// instance_id).
func (a *API) stored(r *http.Request) (store.Instance, error) {
	id := mux.Vars(r)["instance_id"]
	inst, err := a.Store.Instances().GetInstance(r.Context(), id)
	if errors.Is(err, store.ErrNotFound) {
		return inst, failure(http.StatusNotFound, "InstanceNotFound", "instance_id %q is not an instance of this broker", id)
	}
	if err != nil {
		return inst, stateDB("read the instance", err)
	}
	return inst, nil
}

// instance returns the instance of the path, ready for management: it
// exists, its provisioning succeeded and no operation runs on it (404, 409).
func (a *API) instance(r *http.Request) (store.Instance, error) {
	inst, op, err := a.provisioned(r)
	if err == nil && op.State == store.InProgress {
		return store.Instance{}, failure(http.StatusConflict, "OperationInProgress",
			"instance %s has an operation in progress (%s: %s); try again once last_operation says it finished", inst.ID, op.Kind, op.Description)
	}
	return inst, err
}

// provisioned returns the instance of the path, not deprovisioned and
// whose provisioning did not fail (404, 409), with its latest operation,
// which may still run.
func (a *API) provisioned(r *http.Request) (store.Instance, store.Operation, error) {
	inst, err := a.stored(r)
	if err != nil {
		return inst, store.Operation{}, err
	}
	if inst.Gone() {
		return store.Instance{}, store.Operation{}, failure(http.StatusNotFound, "InstanceNotFound", "instance_id %q was deprovisioned", inst.ID)
	}
	op, err := a.Store.Instances().LatestOperation(r.Context(), inst.ID)
	if err != nil {
		return store.Instance{}, op, stateDB("read the instance's latest operation", err)
	}
	if op.Kind == store.KindProvision && op.State == store.Failed {
		return store.Instance{}, op, failure(http.StatusConflict, "InstanceNotReady", "instance %s failed to provision: %s", inst.ID, op.Description)
	}
	return inst, op, nil
}

// startOperation records an OSB operation of kind on inst with raw, its
// payload (operation.Encode), and enqueues its job in the same transaction
// (EnqueueOp): 409 while another operation runs, 410 once the instance is
// deprovisioned.
func (a *API) startOperation(ctx context.Context, inst store.Instance, kind store.OperationKind, raw json.RawMessage, description string) (store.Operation, error) {
	op := store.Operation{ID: uuid.NewString(), InstanceID: inst.ID, Kind: kind, PlanID: inst.PlanID,
		Parameters: raw, Description: description}
	switch err := a.Store.Instances().StartOperation(ctx, op, a.EnqueueOp); {
	case errors.Is(err, store.ErrOperationInFlight):
		return op, failure(http.StatusConflict, "OperationInProgress",
			"instance %s has an operation in progress: try again once last_operation says it finished", inst.ID)
	case errors.Is(err, store.ErrNotFound):
		return op, failure(http.StatusGone, "Gone", "instance %s was deprovisioned", inst.ID)
	case err != nil:
		return op, stateDB("record the operation", err)
	}
	return op, nil
}
