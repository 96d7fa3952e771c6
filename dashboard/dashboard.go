// Package dashboard serves each instance's dashboard_url (OSB 2.17
// "Provisioning" response): server-rendered pages (html/template, plain
// forms, no script but the charts') of the seeds' "Database Dashboard":
// overview, metrics, running queries, users, extensions, backups, settings.
//
// A user logs in with a database username and password of that instance:
// the broker checks them with a SCRAM login to the instance (Logins), so
// the database is the identity source, and the session is a cookie of that
// instance only (package webauth). Read-write users and the owner get every
// action; read-only users a view without any.
//
// The pages are a client of the management API: every figure shown and
// every change made is a request to API (mgmtapi behind webauth's Guard)
// carrying the user's own session cookie, CSRF token and Origin, so the
// dashboard can do nothing a script holding the same session could not.
package dashboard

import (
	"context"
	"log/slog"
	"net/http"
	"net/url"
	"strings"

	"github.com/gorilla/mux"

	"github.com/pgbroker/pgbroker/store"
	"github.com/pgbroker/pgbroker/users"
	"github.com/pgbroker/pgbroker/webauth"
)

// Path is the route of an instance's dashboard, as gorilla/mux spells it;
// its pages are below it.
const Path = "/dashboard/instances/{instance_id}"

// URL returns the dashboard_url of instance instanceID under base, the
// broker's external URL without a trailing slash
// ("https://pgbroker.example.com" gives
// "https://pgbroker.example.com/dashboard/instances/<id>", the id
// path-escaped).
func URL(base, instanceID string) string {
	return strings.TrimRight(base, "/") + "/dashboard/instances/" + url.PathEscape(instanceID)
}

// Logins checks a dashboard login against the instance (instances.Service).
// Errors: webauth.ErrLoginRefused.
type Logins interface {
	LogIn(ctx context.Context, inst store.Instance, username, password string) (users.User, error)
}

// Options wire the dashboard.
type Options struct {
	Store    *store.Store      // the instances, for the login
	Logins   Logins            // checks usernames and passwords against the instance
	API      http.Handler      // the management API behind webauth's Guard (httpapi's /api/ handler)
	Sessions *webauth.Sessions // seals and opens sessions
	Limiter  *webauth.Limiter  // login attempts
	Base     string            // the broker's external URL (PGBROKER_EXTERNAL_URL), no trailing slash
	Log      *slog.Logger
}

// Dashboard serves the pages.
type Dashboard struct {
	Options
	origin   string // scheme://host[:port] of Base: state-changing requests must come from it
	basePath string // the path of Base ("" or "/prefix"): links are under it
}

// New returns the dashboard. Errors: Base is not an absolute URL.
func New(o Options) (*Dashboard, error) {
	origin, err := webauth.OriginOf(o.Base)
	if err != nil {
		return nil, err
	}
	u, _ := url.Parse(o.Base)
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
	return &Dashboard{Options: o, origin: origin, basePath: strings.TrimRight(u.Path, "/")}, nil
}

// Handler routes Path and the pages below it; the static files are at
// StaticPath.
func (d *Dashboard) Handler() http.Handler {
	r := mux.NewRouter()
	r.NotFoundHandler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		secureHeaders(w)
		http.Error(w, "no such dashboard page", http.StatusNotFound)
	})
	r.PathPrefix(StaticPath).Handler(staticFiles())
	s := r.PathPrefix(Path).Subrouter()
	s.HandleFunc("", d.home).Methods(http.MethodGet, http.MethodHead)
	s.HandleFunc("/login", d.loginPage).Methods(http.MethodGet, http.MethodHead)
	s.HandleFunc("/login", d.login).Methods(http.MethodPost)
	s.HandleFunc("/logout", d.logout).Methods(http.MethodPost)
	for _, t := range tabs {
		s.Handle("/"+t.slug, d.page(t)).Methods(http.MethodGet, http.MethodHead)
	}
	for _, a := range d.actions() {
		s.Handle(a.path, d.act(a)).Methods(http.MethodPost)
	}
	return r
}

// link is the URL path of page (e.g. "/users") of instance id, under Base.
func (d *Dashboard) link(id, page string) string {
	return d.basePath + "/dashboard/instances/" + url.PathEscape(id) + page
}
