// Package dashboard serves each instance's dashboard_url (OSB 2.17
// "Provisioning" response). Until the dashboard itself exists, the URL
// answers one static page saying what it will hold (the seeds' "Database
// Dashboard": stats, metrics over time, running queries, users, extensions,
// backups, settings).
//
// Authentication: none, on purpose, because the placeholder reads nothing.
// It is the same bytes for every instance id, known or not, so it reveals
// no tenant's data and not even whether an instance exists. The URL carries
// only the instance id, no secret: the dashboard will log users in with a
// database login of that instance (the instance is the identity source), so
// a link that leaks through history or a Referer grants nothing. Whoever
// replaces this page must put that login in front of any instance data.
package dashboard

import (
	_ "embed"
	"net/http"
	"net/url"
	"strings"
)

// Path is the route of an instance's dashboard, as gorilla/mux spells it.
const Path = "/dashboard/instances/{instance_id}"

// URL returns the dashboard_url of instance instanceID under base, the
// broker's external URL without a trailing slash
// ("https://pgbroker.example.com" gives
// "https://pgbroker.example.com/dashboard/instances/<id>", the id
// path-escaped).
func URL(base, instanceID string) string {
	return strings.TrimRight(base, "/") + "/dashboard/instances/" + url.PathEscape(instanceID)
}

//go:embed placeholder.html
var page []byte

// Handler answers GET and HEAD of Path with the placeholder page, 200,
// text/html; other methods get 405. Headers forbid scripts, framing,
// caching and sending the URL on as a Referer.
func Handler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			w.Header().Set("Allow", "GET, HEAD")
			http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
			return
		}
		h := w.Header()
		h.Set("Content-Type", "text/html; charset=utf-8")
		h.Set("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'")
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("X-Frame-Options", "DENY")
		h.Set("Referrer-Policy", "no-referrer")
		h.Set("Cache-Control", "no-store")
		w.WriteHeader(http.StatusOK)
		if r.Method == http.MethodGet {
			_, _ = w.Write(page)
		}
	})
}
