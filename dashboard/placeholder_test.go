package dashboard

import (
	"bytes"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

func TestURLEscapesTheInstanceID(t *testing.T) {
	if got := URL("https://pg.example.com/", "a/b?c"); got != "https://pg.example.com/dashboard/instances/a%2Fb%3Fc" {
		t.Errorf("URL = %q", got)
	}
}

// TestPlaceholderIsTheSameForEveryInstance: the page describes the
// dashboard to come, and is byte for byte the same whatever the id, so it
// can reveal nothing of an instance (not even that it exists) and never
// echoes the id into HTML.
func TestPlaceholderIsTheSameForEveryInstance(t *testing.T) {
	get := func(path string) (*http.Response, []byte) {
		rec := httptest.NewRecorder()
		Handler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, path, nil))
		body, _ := io.ReadAll(rec.Result().Body)
		return rec.Result(), body
	}
	resp, first := get("/dashboard/instances/7a1c2f8e-0000-4000-8000-000000000001")
	if resp.StatusCode != http.StatusOK || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/html") {
		t.Fatalf("status %d, content type %q", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	for _, want := range []string{"Overview", "Metrics", "Running queries", "Users", "Backups", "Extensions", "Settings"} {
		if !bytes.Contains(first, []byte(want)) {
			t.Errorf("page does not mention %s", want)
		}
	}
	if csp := resp.Header.Get("Content-Security-Policy"); !strings.Contains(csp, "default-src 'none'") {
		t.Errorf("Content-Security-Policy %q allows more than styles", csp)
	}
	_, other := get("/dashboard/instances/%3Cscript%3Ealert(1)%3C%2Fscript%3E")
	if !bytes.Equal(first, other) {
		t.Error("the page differs between instance ids")
	}
	rec := httptest.NewRecorder()
	Handler().ServeHTTP(rec, httptest.NewRequest(http.MethodPost, "/dashboard/instances/x", nil))
	if rec.Code != http.StatusMethodNotAllowed {
		t.Errorf("POST: %d, want 405", rec.Code)
	}
}
