package httpapi

import (
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/pgbroker/pgbroker/webauth"
)

// TestDashboardAndItsSessionsReachOnlyTheirInstance: /dashboard/ is served
// without the platform's credentials (its pages log users in), and a
// dashboard session opens /api/ for its own instance only, while /v2/ and
// /metrics still ask for the broker's credentials.
func TestDashboardAndItsSessionsReachOnlyTheirInstance(t *testing.T) {
	sessions := webauth.NewSessions([]byte("k"), time.Hour, false)
	var apiGiven http.Handler
	h := NewRouter(nil, Options{Username: "broker", Password: "s3cret", MaxBodyBytes: 4096,
		Log:      slog.New(slog.NewTextHandler(io.Discard, nil)),
		Sessions: sessions, Origin: "http://broker.test",
		Management: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { _, _ = io.WriteString(w, "api") }),
		Metrics:    http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}),
		Dashboard: func(api http.Handler) http.Handler {
			apiGiven = api
			return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { _, _ = io.WriteString(w, "dashboard") })
		}})
	cookie := &http.Cookie{Name: webauth.CookieName("inst-a"), Value: sessions.Seal(sessions.New("inst-a", "alice", false, time.Now()))}
	get := func(path string, c *http.Cookie) *httptest.ResponseRecorder {
		rec := httptest.NewRecorder()
		req := httptest.NewRequest(http.MethodGet, path, nil)
		if c != nil {
			req.AddCookie(c)
		}
		h.ServeHTTP(rec, req)
		return rec
	}
	if rec := get("/dashboard/instances/inst-a/login", nil); rec.Code != 200 || rec.Body.String() != "dashboard" || apiGiven == nil {
		t.Fatalf("dashboard: %d %q, api given %v", rec.Code, rec.Body.String(), apiGiven != nil)
	}
	for _, c := range []struct {
		path   string
		cookie *http.Cookie
		want   int
	}{
		{"/api/instances/inst-a/users", cookie, 200},
		{"/api/instances/inst-b/users", cookie, 401},
		{"/api/instances/inst-a/users", nil, 401},
		{"/v2/catalog", cookie, 401},
		{"/metrics", cookie, 401},
	} {
		if rec := get(c.path, c.cookie); rec.Code != c.want {
			t.Errorf("%s (session %v): %d, want %d", c.path, c.cookie != nil, rec.Code, c.want)
		}
	}
}
