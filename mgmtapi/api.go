// Package mgmtapi is the management API owners use beyond OSB (DESIGN.md
// "Management API"): the users and extensions of an instance, as JSON under
// /api/instances/{instance_id}/…. openapi.yaml in this folder describes the
// whole management API, the backups' routes (package backupapi) included;
// Handler serves it at /api/openapi.yaml.
// httpapi mounts it behind the broker's basic auth and body limit. Every
// rule broken gets a 4xx naming the rule and changes nothing; changes that
// restart the node (extensions needing shared_preload_libraries) become an
// OSB update operation, carried out by the worker and shown by last_operation.
package mgmtapi

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"

	"github.com/gorilla/mux"

	"github.com/pgbroker/pgbroker/extensions"
	"github.com/pgbroker/pgbroker/provisioner"
	"github.com/pgbroker/pgbroker/store"
	"github.com/pgbroker/pgbroker/users"
)

// Instances is what the API needs of the provisioner (*provisioner.Provisioner).
type Instances interface {
	Users(ctx context.Context, in provisioner.Instance) ([]users.User, error)
	User(ctx context.Context, in provisioner.Instance, username string) (users.User, error)
	CreateUser(ctx context.Context, in provisioner.Instance, username, password string, readOnly bool) error
	SetUserPassword(ctx context.Context, in provisioner.Instance, username, password string) error
	DeleteUser(ctx context.Context, in provisioner.Instance, username string) error
	Extensions(ctx context.Context, in provisioner.Instance) ([]extensions.InstalledExtension, error)
	EnableExtensions(ctx context.Context, in provisioner.Instance, names []string) error
	DisableExtensions(ctx context.Context, in provisioner.Instance, names []string) error
}

// API serves the management API.
type API struct {
	store     *store.Store
	instances Instances
	enqueue   store.EnqueueFunc
	log       *slog.Logger
}

// New returns the API. enqueue puts an operation's job on the durable queue
// in the transaction that records it (worker.Runner.Enqueue).
func New(st *store.Store, inst Instances, enqueue store.EnqueueFunc, log *slog.Logger) *API {
	return &API{store: st, instances: inst, enqueue: enqueue, log: log}
}

// Handler returns the routes of openapi.yaml but the backups' (package
// backupapi), and the document itself at DocumentPath. Unknown paths get a
// JSON 404, known paths with another method a JSON 405.
func (a *API) Handler() http.Handler {
	r := mux.NewRouter()
	r.NotFoundHandler = http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		writeError(w, http.StatusNotFound, "NotFound", "no such management API path")
	})
	r.MethodNotAllowedHandler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		writeError(w, http.StatusMethodNotAllowed, "MethodNotAllowed", r.Method+" is not allowed on this path")
	})
	r.HandleFunc(DocumentPath, serveOpenAPI).Methods(http.MethodGet)
	const inst = "/api/instances/{instance_id}"
	r.HandleFunc(inst+"/users", a.listUsers).Methods(http.MethodGet)
	r.HandleFunc(inst+"/users", a.createUser).Methods(http.MethodPost)
	r.HandleFunc(inst+"/users/{username}/password", a.setPassword).Methods(http.MethodPut)
	r.HandleFunc(inst+"/users/{username}", a.deleteUser).Methods(http.MethodDelete)
	r.HandleFunc(inst+"/extensions", a.listExtensions).Methods(http.MethodGet)
	r.HandleFunc(inst+"/extensions/{name}", a.enableExtension).Methods(http.MethodPut)
	r.HandleFunc(inst+"/extensions/{name}", a.disableExtension).Methods(http.MethodDelete)
	return r
}

// apiError is a 4xx or 5xx answer: Rule names the rule broken (or what
// failed), Msg says it in a sentence.
type apiError struct {
	Status int
	Rule   string
	Msg    string
}

func (e *apiError) Error() string { return e.Msg }

func failure(status int, rule, format string, args ...any) *apiError {
	return &apiError{Status: status, Rule: rule, Msg: fmt.Sprintf(format, args...)}
}

// dependency is a 500 naming what failed; the message never carries a secret
// (pgadmin and provisioner redact them).
func dependency(what string, err error) *apiError {
	return failure(http.StatusInternalServerError, "DependencyFailure", "%s: %v", what, err)
}

func (a *API) fail(w http.ResponseWriter, r *http.Request, err error) {
	var ae *apiError
	if !errors.As(err, &ae) {
		ae = dependency("management request", err)
	}
	if ae.Status >= 500 {
		a.log.ErrorContext(r.Context(), "management request failed", slog.String("instance_id", mux.Vars(r)["instance_id"]),
			slog.String("path", r.URL.Path), slog.String("error", ae.Msg))
	}
	writeError(w, ae.Status, ae.Rule, ae.Msg)
}

// writeError writes {"error": rule, "description": msg}, the OSB error shape.
func writeError(w http.ResponseWriter, status int, rule, msg string) {
	writeJSON(w, status, map[string]string{"error": rule, "description": msg})
}

func writeJSON(w http.ResponseWriter, status int, body any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(body)
}

// readBody decodes a JSON object into v, refusing unknown keys, wrong types
// and trailing data (400 naming the problem).
func readBody(r *http.Request, v any) error {
	body, err := io.ReadAll(r.Body)
	var tooLarge *http.MaxBytesError
	if errors.As(err, &tooLarge) {
		return failure(http.StatusRequestEntityTooLarge, "BodyTooLarge", "request body is larger than %d bytes", tooLarge.Limit)
	}
	if err != nil {
		return failure(http.StatusBadRequest, "Body", "read request body: %v", err)
	}
	if len(strings.TrimSpace(string(body))) == 0 {
		body = []byte("{}")
	}
	dec := json.NewDecoder(strings.NewReader(string(body)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		var typeErr *json.UnmarshalTypeError
		switch {
		case errors.As(err, &typeErr):
			return failure(http.StatusBadRequest, "Type", "%s must be a JSON %s", typeErr.Field, typeErr.Type.Kind())
		case strings.HasPrefix(err.Error(), "json: unknown field "):
			return failure(http.StatusBadRequest, "UnknownField", "%s is not a field of this request", strings.TrimPrefix(err.Error(), "json: unknown field "))
		}
		return failure(http.StatusBadRequest, "JSON", "request body must be one JSON object: %v", err)
	}
	if dec.More() {
		return failure(http.StatusBadRequest, "JSON", "request body must be one JSON object, without trailing data")
	}
	return nil
}

// instance returns the instance of the path, ready for management: it
// exists, its provisioning succeeded and no operation runs on it (404, 409).
func (a *API) instance(r *http.Request) (store.Instance, error) {
	id := mux.Vars(r)["instance_id"]
	inst, err := a.store.GetInstance(r.Context(), id)
	if errors.Is(err, store.ErrNotFound) || (err == nil && inst.Gone()) {
		return store.Instance{}, failure(http.StatusNotFound, "InstanceNotFound", "instance %s does not exist", id)
	}
	if err != nil {
		return store.Instance{}, dependency("read instance from the state database", err)
	}
	op, err := a.store.LatestOperation(r.Context(), id)
	if err != nil {
		return store.Instance{}, dependency("read operation from the state database", err)
	}
	switch {
	case op.State == store.InProgress:
		return store.Instance{}, failure(http.StatusConflict, "OperationInProgress",
			"instance %s has an operation in progress (%s: %s); try again once last_operation says it finished", id, op.Kind, op.Description)
	case op.Kind == store.KindProvision && op.State == store.Failed:
		return store.Instance{}, failure(http.StatusConflict, "InstanceNotReady", "instance %s failed to provision: %s", id, op.Description)
	}
	return inst, nil
}

func target(i store.Instance) provisioner.Instance {
	return provisioner.Instance{ShortID: i.ShortID, GatewayPort: i.GatewayPort, NodeID: i.NodeID, ForceTLS: i.ForceTLS, Extensions: i.Extensions}
}
