package mgmtapi

import (
	"errors"
	"log/slog"
	"net/http"
	"slices"

	"github.com/gorilla/mux"

	"github.com/pgbroker/pgbroker/extensions"
	"github.com/pgbroker/pgbroker/operation"
	"github.com/pgbroker/pgbroker/store"
)

// extensionRoutes serve the extensions of an instance's database (seed 003
// "Managing Extensions").
type extensionRoutes struct{ *API }

func (a extensionRoutes) routes() []route {
	return []route{
		{http.MethodGet, "/extensions", a.listExtensions},
		{http.MethodPut, "/extensions/{name}", a.enableExtension},
		{http.MethodDelete, "/extensions/{name}", a.disableExtension},
	}
}

// extension is one allowed extension in JSON.
type extension struct {
	Name            string `json:"name"`
	Enabled         bool   `json:"enabled"`           // present in pg_extension of the instance's database
	Version         string `json:"version,omitempty"` // pg_extension.extversion when enabled
	RequiresRestart bool   `json:"requires_restart"`  // needs shared_preload_libraries: enabling or disabling restarts the node
}

// operationStarted is the answer to a change carried out as an OSB update operation.
type operationStarted struct {
	Operation   string `json:"operation"` // poll /v2/service_instances/{instance_id}/last_operation?operation=…
	State       string `json:"state"`
	Description string `json:"description"`
}

// GET /api/instances/{instance_id}/extensions: 200 {"extensions": [...]},
// every allowed extension with whether it is enabled.
func (a extensionRoutes) listExtensions(w http.ResponseWriter, r *http.Request) {
	inst, err := a.instance(r)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	installed, err := a.Extensions.Extensions(r.Context(), inst)
	if err != nil {
		a.fail(w, r, dependency("list extensions on the instance", err))
		return
	}
	version := map[string]string{}
	for _, e := range installed {
		version[e.Name] = e.Version
	}
	out := make([]extension, len(extensions.Contrib))
	for i, e := range extensions.Contrib {
		v, ok := version[e.Name]
		out[i] = extension{Name: e.Name, Enabled: ok, Version: v, RequiresRestart: e.Preload}
	}
	writeJSON(w, http.StatusOK, map[string]any{"extensions": out})
}

// PUT /api/instances/{instance_id}/extensions/{name}: 200 once created; 202
// with an operation when it needs shared_preload_libraries (the node
// restarts); 422 naming the allowed extensions for any other name.
func (a extensionRoutes) enableExtension(w http.ResponseWriter, r *http.Request) {
	ext, err := allowed(r)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	inst, err := a.instance(r)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	want := withExtension(inst.Extensions, ext.Name)
	if extensions.NeedsRestart(inst.Extensions, want) {
		a.changeByOperation(w, r, inst, want)
		return
	}
	if err := a.Extensions.EnableExtensions(r.Context(), inst, []string{ext.Name}); err != nil {
		a.fail(w, r, dependency("create the extension on the instance", err))
		return
	}
	if err := a.Store.Instances().SetExtensions(r.Context(), inst.ID, want); err != nil {
		a.fail(w, r, stateDB("record the instance's extensions", err))
		return
	}
	a.log.InfoContext(r.Context(), "extension enabled", slog.String("instance_id", inst.ID), slog.String("extension", ext.Name))
	writeJSON(w, http.StatusOK, a.extensionState(r, inst, ext))
}

// DELETE /api/instances/{instance_id}/extensions/{name}: 204 once dropped;
// 202 with an operation when it was preloaded (the node restarts); 409 when
// objects use it; 422 for a name not allowed.
func (a extensionRoutes) disableExtension(w http.ResponseWriter, r *http.Request) {
	ext, err := allowed(r)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	inst, err := a.instance(r)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	want := slices.DeleteFunc(slices.Clone(inst.Extensions), func(e string) bool { return e == ext.Name })
	if extensions.NeedsRestart(inst.Extensions, want) {
		a.changeByOperation(w, r, inst, want)
		return
	}
	err = a.Extensions.DisableExtensions(r.Context(), inst, []string{ext.Name})
	if errors.Is(err, extensions.ErrExtensionInUse) {
		a.fail(w, r, failure(http.StatusConflict, "ExtensionInUse", "%v: drop what uses it first", err))
		return
	}
	if err != nil {
		a.fail(w, r, dependency("drop the extension on the instance", err))
		return
	}
	if err := a.Store.Instances().SetExtensions(r.Context(), inst.ID, want); err != nil {
		a.fail(w, r, stateDB("record the instance's extensions", err))
		return
	}
	a.log.InfoContext(r.Context(), "extension disabled", slog.String("instance_id", inst.ID), slog.String("extension", ext.Name))
	w.WriteHeader(http.StatusNoContent)
}

// changeByOperation records an OSB update operation that moves the
// instance to the extensions want (re-registering the node job with the new
// shared_preload_libraries, then CREATE or DROP EXTENSION) and answers 202.
func (a extensionRoutes) changeByOperation(w http.ResponseWriter, r *http.Request, inst store.Instance, want []string) {
	op, err := a.startOperation(r.Context(), inst, store.KindUpdate, operation.Encode(operation.Update{Extensions: &want}), "queued")
	if err != nil {
		a.fail(w, r, err)
		return
	}
	a.log.InfoContext(r.Context(), "extension change accepted as an operation", slog.String("instance_id", inst.ID),
		slog.String("operation", op.ID), slog.Any("extensions", want))
	w.Header().Set("Location", "/v2/service_instances/"+inst.ID+"/last_operation?operation="+op.ID)
	writeJSON(w, http.StatusAccepted, operationStarted{Operation: op.ID, State: string(store.InProgress),
		Description: "the node restarts to change shared_preload_libraries; poll last_operation"})
}

// extensionState reads the extension back after a change.
func (a extensionRoutes) extensionState(r *http.Request, inst store.Instance, ext extensions.Extension) extension {
	out := extension{Name: ext.Name, RequiresRestart: ext.Preload}
	installed, err := a.Extensions.Extensions(r.Context(), inst)
	if err != nil {
		return out
	}
	for _, e := range installed {
		if e.Name == ext.Name {
			out.Enabled, out.Version = true, e.Version
		}
	}
	return out
}

// allowed returns the extension of the path, or 422 naming the allowed ones.
func allowed(r *http.Request) (extensions.Extension, error) {
	name := mux.Vars(r)["name"]
	ext, ok := extensions.LookupExtension(name)
	if !ok {
		return ext, failure(http.StatusUnprocessableEntity, "ExtensionNotAvailable", "%v", extensions.CheckExtensions([]string{name}))
	}
	return ext, nil
}

func withExtension(have []string, name string) []string {
	out := slices.Clone(have)
	if !slices.Contains(out, name) {
		out = append(out, name)
		slices.Sort(out)
	}
	return out
}
