package httpapi

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

func echo() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		_, _ = w.Write(body)
	})
}

func TestBasicAuthRejectsWrongCredentials(t *testing.T) {
	h := basicAuth("broker", "s3cret", echo())
	cases := []struct {
		name, user, pass string
		set              bool
		want             int
	}{
		{"right", "broker", "s3cret", true, 200},
		{"wrong password", "broker", "nope", true, 401},
		{"wrong user", "other", "s3cret", true, 401},
		{"none", "", "", false, 401},
		{"empty", "", "", true, 401},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			req := httptest.NewRequest("GET", "/v2/catalog", nil)
			if tc.set {
				req.SetBasicAuth(tc.user, tc.pass)
			}
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, req)
			if rec.Code != tc.want {
				t.Fatalf("status %d, want %d", rec.Code, tc.want)
			}
			if tc.want == 401 && strings.Contains(rec.Body.String(), "s3cret") {
				t.Fatal("401 body echoes the password")
			}
		})
	}
}

func TestRequireJSONAnswers400ForBadBodies(t *testing.T) {
	h := limitBody(64, requireJSON(echo()))
	cases := []struct {
		name, method, body string
		want               int
		says               string
	}{
		{"object", "PUT", `{"a":1}`, 200, `{"a":1}`},
		{"truncated", "PUT", `{"a":`, 400, "not valid JSON"},
		{"array", "PUT", `[1]`, 400, "must be a JSON object, not array"},
		{"string", "PATCH", `"x"`, 400, "not string"},
		{"null", "PUT", `null`, 400, "not null"},
		{"two objects", "PUT", `{}{}`, 400, "one JSON object"},
		{"empty", "PUT", ``, 400, "not valid JSON"},
		{"too large", "PUT", `{"a":"` + strings.Repeat("x", 100) + `"}`, 413, "larger than 64 bytes"},
		{"GET passes", "GET", ``, 200, ""},
		{"DELETE passes", "DELETE", ``, 200, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			req := httptest.NewRequest(tc.method, "/v2/service_instances/x", strings.NewReader(tc.body))
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, req)
			if rec.Code != tc.want || !strings.Contains(rec.Body.String(), tc.says) {
				t.Fatalf("got %d %q, want %d containing %q", rec.Code, rec.Body.String(), tc.want, tc.says)
			}
		})
	}
}

func TestReadyzReportsEachCheck(t *testing.T) {
	ok := Check{Name: "state_database", Fn: func(context.Context) error { return nil }}
	down := Check{Name: "nomad", Fn: func(context.Context) error { return errors.New("connection refused") }}
	for _, tc := range []struct {
		checks []Check
		want   int
		says   string
	}{
		{[]Check{ok}, 200, `"state_database":"ok"`},
		{[]Check{ok, down}, 503, `"nomad":"connection refused"`},
	} {
		rec := httptest.NewRecorder()
		readyz(tc.checks).ServeHTTP(rec, httptest.NewRequest("GET", "/readyz", nil))
		if rec.Code != tc.want || !strings.Contains(rec.Body.String(), tc.says) {
			t.Fatalf("got %d %s, want %d with %s", rec.Code, rec.Body.String(), tc.want, tc.says)
		}
	}
}

func TestOSBHeaders(t *testing.T) {
	h := osbHeaders(echo())
	cases := []struct {
		name    string
		headers map[string]string
		want    int
		says    string
	}{
		{"2.17", map[string]string{"X-Broker-API-Version": "2.17"}, 200, ""},
		{"2.13", map[string]string{"X-Broker-API-Version": "2.13"}, 200, ""},
		{"2.12", map[string]string{"X-Broker-API-Version": "2.12"}, 412, "2.13"},
		{"3.0", map[string]string{"X-Broker-API-Version": "3.0"}, 412, "not supported"},
		{"missing", map[string]string{}, 412, "required"},
		{"garbage", map[string]string{"X-Broker-API-Version": "two"}, 412, "not a version"},
		{"identity ok", map[string]string{"X-Broker-API-Version": "2.17",
			"X-Broker-API-Originating-Identity": "cloudfoundry eyJ1c2VyX2lkIjoiYWJjIn0="}, 200, ""},
		{"identity not base64", map[string]string{"X-Broker-API-Version": "2.17",
			"X-Broker-API-Originating-Identity": "cloudfoundry !!!"}, 400, "not base64"},
		{"identity no platform", map[string]string{"X-Broker-API-Version": "2.17",
			"X-Broker-API-Originating-Identity": "eyJ1c2VyX2lkIjoiYWJjIn0="}, 400, "<platform>"},
		{"identity not an object", map[string]string{"X-Broker-API-Version": "2.17",
			"X-Broker-API-Originating-Identity": "kubernetes WzFd"}, 400, "not a JSON object"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			req := httptest.NewRequest("GET", "/v2/catalog", nil)
			for k, v := range tc.headers {
				req.Header.Set(k, v)
			}
			req.Header.Set("X-Broker-API-Request-Identity", "req-42")
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, req)
			if rec.Code != tc.want || !strings.Contains(rec.Body.String(), tc.says) {
				t.Fatalf("got %d %q, want %d containing %q", rec.Code, rec.Body.String(), tc.want, tc.says)
			}
			if rec.Header().Get("X-Broker-API-Request-Identity") != "req-42" {
				t.Fatal("request identity not echoed")
			}
		})
	}
}
