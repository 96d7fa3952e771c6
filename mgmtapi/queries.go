package mgmtapi

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"strconv"
	"time"

	"github.com/gorilla/mux"

	"github.com/pgbroker/pgbroker/backends"
	"github.com/pgbroker/pgbroker/store"
	"github.com/pgbroker/pgbroker/webauth"
)

// Queries is what the API needs of an instance's running queries
// (instances.Service). Errors of CancelBackend: backends.ErrNotFound.
type Queries interface {
	Backends(ctx context.Context, inst store.Instance) ([]backends.Backend, error)
	CancelBackend(ctx context.Context, inst store.Instance, pid int32, terminate bool) error
}

// queryRoutes serve the running queries of an instance (seed 000 "Running
// Queries").
type queryRoutes struct{ *API }

func (a queryRoutes) routes() []route {
	return []route{
		{http.MethodGet, "/queries", a.list},
		{http.MethodPost, "/queries/{pid}/cancel", a.signal(false)},
		{http.MethodPost, "/queries/{pid}/terminate", a.signal(true)},
	}
}

// query is one session in JSON.
type query struct {
	PID              int32      `json:"pid"`
	Username         string     `json:"username"`
	Application      string     `json:"application"`
	Client           string     `json:"client"`
	State            string     `json:"state"`
	Idle             bool       `json:"idle"`
	BackendStart     time.Time  `json:"backend_start"`
	TransactionStart *time.Time `json:"transaction_start,omitempty"`
	QueryStart       *time.Time `json:"query_start,omitempty"`
	// DurationSeconds runs from the start of the transaction when the
	// session is in one, else from the start of its (last) query.
	DurationSeconds float64 `json:"duration_seconds"`
	Query           string  `json:"query"`
	// QueryHidden: a read-only user sees the text of its own sessions only.
	QueryHidden bool `json:"query_hidden,omitempty"`
}

func queryJSON(b backends.Backend, c webauth.Caller, now time.Time) query {
	q := query{PID: b.PID, Username: b.Username, Application: b.Application, Client: b.Client, State: b.State,
		Idle: b.Idle(), BackendStart: b.BackendStart, TransactionStart: b.TransactionStart, QueryStart: b.QueryStart, Query: b.Query}
	switch {
	case b.TransactionStart != nil:
		q.DurationSeconds = now.Sub(*b.TransactionStart).Seconds()
	case b.QueryStart != nil:
		q.DurationSeconds = now.Sub(*b.QueryStart).Seconds()
	}
	if !c.SeesTextOf(b.Username) {
		q.Query, q.QueryHidden = "", true
	}
	return q
}

// GET /api/instances/{instance_id}/queries[?idle=true]: 200 {"queries":
// [...], "idle_hidden": n}, the sessions of the instance's users, idle ones
// only with idle=true; 400 naming idle for another value.
func (a queryRoutes) list(w http.ResponseWriter, r *http.Request) {
	withIdle, err := boolQuery(r, "idle")
	if err != nil {
		a.fail(w, r, err)
		return
	}
	inst, err := a.instance(r)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	all, err := a.Queries.Backends(r.Context(), inst)
	if err != nil {
		a.fail(w, r, dependency("list the instance's sessions", err))
		return
	}
	out, hidden, now := []query{}, 0, time.Now()
	for _, b := range all {
		if b.Idle() && !withIdle {
			hidden++
			continue
		}
		out = append(out, queryJSON(b, webauth.CallerOf(r.Context()), now))
	}
	writeJSON(w, http.StatusOK, map[string]any{"queries": out, "idle_hidden": hidden})
}

// POST /api/instances/{instance_id}/queries/{pid}/cancel (pg_cancel_backend)
// and …/terminate (pg_terminate_backend): 200 {"pid": n}; 400 naming pid
// when it is not a positive integer; 404 when no session of the instance's
// users has it (the broker's and replication sessions never do).
func (a queryRoutes) signal(terminate bool) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		pid, err := strconv.ParseInt(mux.Vars(r)["pid"], 10, 32)
		if err != nil || pid <= 0 {
			a.fail(w, r, failure(http.StatusBadRequest, "InvalidPID", "pid %q must be a positive integer, a session's process id", mux.Vars(r)["pid"]))
			return
		}
		inst, err := a.instance(r)
		if err != nil {
			a.fail(w, r, err)
			return
		}
		err = a.Queries.CancelBackend(r.Context(), inst, int32(pid), terminate)
		if errors.Is(err, backends.ErrNotFound) {
			a.fail(w, r, failure(http.StatusNotFound, "QueryNotFound", "pid %d is not a session of this instance's users", pid))
			return
		}
		if err != nil {
			a.fail(w, r, dependency("signal the session", err))
			return
		}
		a.log.InfoContext(r.Context(), "session signalled", slog.String("instance_id", inst.ID), slog.Int64("pid", pid), slog.Bool("terminate", terminate))
		writeJSON(w, http.StatusOK, map[string]any{"pid": pid})
	}
}

// boolQuery reads the query parameter name: absent or "false" is false,
// "true" is true; anything else is a 400 naming it.
func boolQuery(r *http.Request, name string) (bool, error) {
	switch v := r.URL.Query().Get(name); v {
	case "", "false":
		return false, nil
	case "true":
		return true, nil
	default:
		return false, failure(http.StatusBadRequest, "InvalidParameter", "%s must be true or false, not %q", name, v)
	}
}
