package httpapi

import (
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/pgbroker/pgbroker/dashboard"
)

// TestDashboardServedWithoutBrokerCredentials: a user's browser opens the
// dashboard_url without the platform's broker credentials, while the OSB
// API beside it still asks for them.
func TestDashboardServedWithoutBrokerCredentials(t *testing.T) {
	h := NewRouter(nil, Options{Username: "broker", Password: "s3cret", MaxBodyBytes: 4096,
		Log: slog.New(slog.NewTextHandler(io.Discard, nil)), Dashboard: dashboard.Handler()})
	get := func(method, path string) *httptest.ResponseRecorder {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest(method, path, nil))
		return rec
	}
	rec := get(http.MethodGet, "/dashboard/instances/0b6a8c58-2c52-4f3e-9d3e-3f2d8d1f4a11")
	if rec.Code != http.StatusOK || !strings.Contains(rec.Body.String(), "Running queries") {
		t.Fatalf("dashboard: %d %.200q, want 200 with the placeholder page", rec.Code, rec.Body.String())
	}
	if rec := get(http.MethodGet, "/v2/catalog"); rec.Code != http.StatusUnauthorized {
		t.Fatalf("/v2/catalog without credentials: %d, want 401", rec.Code)
	}
	if rec := get(http.MethodPost, "/dashboard/instances/x"); rec.Code != http.StatusMethodNotAllowed {
		t.Fatalf("POST dashboard: %d, want 405", rec.Code)
	}
	if rec := get(http.MethodGet, "/dashboard/instances/"); rec.Code != http.StatusNotFound {
		t.Fatalf("dashboard without an instance id: %d, want 404", rec.Code)
	}
}
