package mgmtapi

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/pgbroker/pgbroker/stats"
)

// TestBadInputIsRefusedBeforeAnythingIsTouched: each rule broken gets its
// 4xx and rule name. The API runs with no store and no instances: reaching
// either would panic, so a pass also shows nothing was read or changed.
func TestBadInputIsRefusedBeforeAnythingIsTouched(t *testing.T) {
	tiers, err := stats.Tiers(15 * time.Second)
	if err != nil {
		t.Fatal(err)
	}
	h := New(Options{Tiers: tiers}).Handler()
	long := strings.Repeat("a", 65)
	cases := []struct {
		name, method, path, body string
		status                   int
		rule                     string
	}{
		{"username too short", "POST", "/users", `{"username":"abcde","password":"password1"}`, 400, "UsernameLength"},
		{"username too long", "POST", "/users", `{"username":"a` + strings.Repeat("b", 32) + `"}`, 400, "UsernameLength"},
		{"username missing", "POST", "/users", `{"password":"password1"}`, 400, "UsernameLength"},
		{"username with a dash", "POST", "/users", `{"username":"my-user"}`, 400, "UsernameCharacters"},
		{"username starting with a digit", "POST", "/users", `{"username":"1myuser"}`, 400, "UsernameFirstCharacter"},
		{"username of a binding", "POST", "/users", `{"username":"u_0123456789ab"}`, 400, "UsernameReserved"},
		{"password too short", "POST", "/users", `{"username":"myuser","password":"1234567"}`, 400, "PasswordLength"},
		{"password too long", "POST", "/users", `{"username":"myuser","password":"` + long + `"}`, 400, "PasswordLength"},
		{"password with a quote", "POST", "/users", `{"username":"myuser","password":"pass'word"}`, 400, "PasswordQuote"},
		{"password with a double quote", "POST", "/users", `{"username":"myuser","password":"pass\"word"}`, 400, "PasswordQuote"},
		{"new password too short", "PUT", "/users/myuser/password", `{"password":"short"}`, 400, "PasswordLength"},
		{"unknown field", "POST", "/users", `{"username":"myuser","superuser":true}`, 400, "UnknownField"},
		{"read_only not a boolean", "POST", "/users", `{"username":"myuser","read_only":"yes"}`, 400, "Type"},
		{"not JSON", "POST", "/users", `{"username":`, 400, "JSON"},
		{"trailing data", "POST", "/users", `{"username":"myuser"} {}`, 400, "JSON"},
		{"extension not installed", "PUT", "/extensions/postgis", ``, 422, "ExtensionNotAvailable"},
		{"extension not allowed", "DELETE", "/extensions/adminpack", ``, 422, "ExtensionNotAvailable"},
		{"metrics range not offered", "GET", "/metrics?range=2h", ``, 400, "Range"},
		{"metrics range in another unit", "GET", "/metrics?range=60m", ``, 400, "Range"},
		{"stats written to", "POST", "/stats", `{}`, 405, "MethodNotAllowed"},
		{"method not allowed", "PATCH", "/users", `{}`, 405, "MethodNotAllowed"},
		{"method not allowed on backups", "DELETE", "/backups", ``, 405, "MethodNotAllowed"},
		{"method not allowed on a download", "POST", "/backups/some-backup/download", ``, 405, "MethodNotAllowed"},
		{"no such path", "GET", "/backups/some-backup/nope", ``, 404, "NotFound"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			req := httptest.NewRequest(c.method, "/api/instances/some-instance"+c.path, strings.NewReader(c.body))
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, req)
			var body struct{ Error, Description string }
			_ = json.Unmarshal(rec.Body.Bytes(), &body)
			if rec.Code != c.status || body.Error != c.rule {
				t.Fatalf("%d %s (%s), want %d %s", rec.Code, body.Error, body.Description, c.status, c.rule)
			}
			if body.Description == "" {
				t.Error("no description")
			}
			if c.rule == "ExtensionNotAvailable" && !strings.Contains(body.Description, "pg_stat_statements") {
				t.Errorf("422 does not name the allowed extensions: %s", body.Description)
			}
			if c.rule == "Range" && !strings.Contains(body.Description, "range") {
				t.Errorf("400 does not name range: %s", body.Description)
			}
			if rec.Code == http.StatusOK {
				t.Error("accepted")
			}
		})
	}
}
