package httpapi

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/jackc/pgx/v5"
	"github.com/pivotal-cf/brokerapi/v10/domain"

	"github.com/pgbroker/pgbroker/broker"
	"github.com/pgbroker/pgbroker/catalog"
	"github.com/pgbroker/pgbroker/credentials"
	"github.com/pgbroker/pgbroker/dashboard"
	"github.com/pgbroker/pgbroker/extensions"
	"github.com/pgbroker/pgbroker/metrics"
	"github.com/pgbroker/pgbroker/mgmtapi"
	"github.com/pgbroker/pgbroker/store"
	"github.com/pgbroker/pgbroker/store/storetest"
	"github.com/pgbroker/pgbroker/users"
	"github.com/pgbroker/pgbroker/webauth"
)

// FuzzRequireJSON feeds arbitrary PUT bodies through the body limit and the
// JSON check: the answer is 413 over the limit, else 200 with the body passed
// on unchanged or 400 with an OSB error body, never anything else. A body
// passed on is one JSON object as encoding/json's own validator sees it, and
// every JSON object the broker can store (UTF-8 text without NUL characters,
// numbers within float64) is passed on.
func FuzzRequireJSON(f *testing.F) {
	const limit = 256
	for _, seed := range []string{
		`{}`, `{"service_id":"postgresql","plan_id":"postgresql-sandbox"}`, ` {"a":[1,{"b":null}]} `,
		``, `null`, `[]`, `"x"`, `1e400`, `{"a":`, `{}{}`, `{} x`, "\xff{}", `{"\u0000":1}`, "{\"a\":\"\xff\"}",
		`{"a":1,"a":2}`, `{"a":1e400}`, `{"a":1e-400}`, `{"a":"\ud800"}`, `{"a":"` + strings.Repeat("x", limit) + `"}`, strings.Repeat("[", 20000),
	} {
		f.Add([]byte(seed))
	}
	h := limitBody(limit, requireJSON(echo()))
	f.Fuzz(func(t *testing.T, body []byte) {
		req := httptest.NewRequest(http.MethodPut, "/v2/service_instances/x", bytes.NewReader(body))
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		isObject := json.Valid(body) && bytes.HasPrefix(bytes.TrimLeft(body, " \t\r\n"), []byte("{"))
		storable := utf8.Valid(body) && !bytes.Contains(body, []byte(`\u0000`)) && json.Unmarshal(body, new(any)) == nil
		switch {
		case len(body) > limit:
			if rec.Code != http.StatusRequestEntityTooLarge {
				t.Fatalf("%d-byte body over the %d-byte limit: status %d, want 413", len(body), limit, rec.Code)
			}
		case rec.Code == http.StatusOK:
			if !isObject || !bytes.Equal(rec.Body.Bytes(), body) {
				t.Fatalf("%q passed on as %q, but it is not one JSON object", body, rec.Body.String())
			}
		case rec.Code == http.StatusBadRequest:
			if isObject && storable {
				t.Fatalf("JSON object %q refused: %s", body, rec.Body.String())
			}
			var e struct{ Description string }
			if err := json.Unmarshal(rec.Body.Bytes(), &e); err != nil || e.Description == "" {
				t.Fatalf("400 for %q without an OSB error body: %q", body, rec.Body.String())
			}
		default:
			t.Fatalf("%q: status %d (%s), want 200 or 400", body, rec.Code, rec.Body.String())
		}
		if msg := objectProblem(body); msg == "" && !isObject {
			t.Fatalf("objectProblem(%q) = \"\", but it is not one JSON object", body)
		}
	})
}

// FuzzOSBHeaders feeds arbitrary X-Broker-API-Version,
// X-Broker-API-Originating-Identity and X-Broker-API-Request-Identity values
// to osbHeaders: 200 exactly when the version is 2.13 or later and the
// identity is absent or well-formed, else 412 (version) or 400 (identity);
// the request identity is always echoed; an error never repeats the encoded
// identity.
func FuzzOSBHeaders(f *testing.F) {
	id := base64.StdEncoding.EncodeToString([]byte(`{"user_id":"683ea748-3092-4ff4-b656-39cacc4d5360"}`))
	for _, seed := range []struct{ version, identity, requestID string }{
		{"2.17", "", "req-1"},
		{"2.13", "cloudfoundry " + id, ""},
		{"2.17", "kubernetes " + base64.StdEncoding.EncodeToString([]byte(`{"username":"admin","groups":["a"],"extra":{}}`)), "r"},
		{"2.12", "", ""},
		{"3.0", "", ""},
		{"", "", ""},
		{"two", "", ""},
		{"2.", "", ""},
		{"2.99999999999999999999", "", ""},
		{"2.17abc", "", ""},
		{" 2.17 ", "", ""},
		{"+2.+17", "", ""},
		{"-2.17", "", ""},
		{"2.17", "cloudfoundry !!!", ""},
		{"2.17", id, ""},
		{"2.17", "kubernetes WzFd", ""},
		{"2.17", "kubernetes bnVsbA==", ""},
		{"2.17", "cloudfoundry  " + id, ""},
		{"2.17", "\tcloudfoundry\t" + id, ""},
		{"2.17", " ", ""},
		{"2.17", "cloudfoundry " + id + "=", ""},
		{"2.17", "cloudfoundry " + strings.TrimRight(id, "="), ""},
		{"2.17", "cloudfoundry " + base64.StdEncoding.EncodeToString([]byte(`{"a":"\u0000"}`)), "\u00e9\n"},
		{"2.17", "cloudfoundry " + base64.StdEncoding.EncodeToString([]byte("{\"a\":\"\xff\"}")), ""},
	} {
		f.Add(seed.version, seed.identity, seed.requestID)
	}
	h := osbHeaders(echo())
	f.Fuzz(func(t *testing.T, version, identity, requestID string) {
		req := httptest.NewRequest(http.MethodGet, "/v2/catalog", nil)
		req.Header.Set("X-Broker-API-Version", version)
		req.Header.Set("X-Broker-API-Originating-Identity", identity)
		req.Header.Set("X-Broker-API-Request-Identity", requestID)
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		_, identityErr := broker.ParseOriginatingIdentity(identity)
		want := http.StatusOK
		switch {
		case versionProblem(version) != "":
			want = http.StatusPreconditionFailed
		case identityErr != nil:
			want = http.StatusBadRequest
		}
		if rec.Code != want {
			t.Fatalf("version %q identity %q: status %d (%s), want %d", version, identity, rec.Code, rec.Body.String(), want)
		}
		if got := rec.Header().Get("X-Broker-API-Request-Identity"); got != requestID {
			t.Fatalf("request identity %q echoed as %q", requestID, got)
		}
		if want == http.StatusOK {
			return
		}
		var e struct{ Description string }
		if err := json.Unmarshal(rec.Body.Bytes(), &e); err != nil || e.Description == "" {
			t.Fatalf("%d without an OSB error body: %q", rec.Code, rec.Body.String())
		}
		if _, encoded, ok := strings.Cut(strings.TrimSpace(identity), " "); ok && len(strings.TrimSpace(encoded)) >= 8 &&
			strings.Contains(e.Description, strings.TrimSpace(encoded)) {
			t.Fatalf("error %q repeats the originating identity", e.Description)
		}
	})
}

// routerInstances stands in for the executor's synchronous side (broker.Instances): every
// call succeeds at once and touches nothing.
type routerInstances struct{}

func (routerInstances) DataSize(context.Context, store.Instance) (int64, error) {
	return 1 << 20, nil
}
func (routerInstances) Bind(context.Context, store.Instance, string, bool) (credentials.Credentials, error) {
	return credentials.Credentials{Host: "127.0.0.1", Port: 35000}, nil
}
func (routerInstances) Credentials(context.Context, store.Instance, string, bool) (credentials.Credentials, error) {
	return credentials.Credentials{Host: "127.0.0.1", Port: 35000}, nil
}
func (routerInstances) Unbind(context.Context, store.Instance, string) error { return nil }
func (routerInstances) Members(context.Context, store.Instance) (string, error) {
	return "", nil
}

// The management API's side (mgmtapi.Users, Extensions, Dumps): an instance
// with one user, no extension, and no dump to download.
func (routerInstances) Users(context.Context, store.Instance) ([]users.User, error) {
	return []users.User{{Username: "app_user"}}, nil
}
func (routerInstances) User(_ context.Context, _ store.Instance, name string) (users.User, error) {
	if name != "app_user" {
		return users.User{}, users.ErrUserNotFound
	}
	return users.User{Username: name}, nil
}
func (routerInstances) CreateUser(context.Context, store.Instance, string, string, bool) error {
	return nil
}
func (routerInstances) SetUserPassword(context.Context, store.Instance, string, string) error {
	return nil
}
func (routerInstances) DeleteUser(context.Context, store.Instance, string) error { return nil }
func (routerInstances) Extensions(context.Context, store.Instance) ([]extensions.InstalledExtension, error) {
	return nil, nil
}
func (routerInstances) EnableExtensions(context.Context, store.Instance, []string) error  { return nil }
func (routerInstances) DisableExtensions(context.Context, store.Instance, []string) error { return nil }
func (routerInstances) Open(context.Context, string) (io.ReadSeekCloser, int64, error) {
	return nil, 0, fs.ErrNotExist
}

// Flags of FuzzRouter's headers argument.
const (
	fuzzNoAuth     = 1 << iota // send no Authorization header
	fuzzWrongAuth              // send wrong credentials
	fuzzNoVersion              // send no X-Broker-API-Version
	fuzzOldVersion             // send X-Broker-API-Version 2.12
	fuzzEscapeIDs              // path-escape the ids (else they go in raw)
	fuzzIdentity               // send the identity argument as X-Broker-API-Originating-Identity
	fuzzRequestID              // send the identity argument as X-Broker-API-Request-Identity
	fuzzJSONType               // send Content-Type: application/json
)

// Shapes of FuzzRouter's route argument: {instance} is the instance id,
// {binding} the binding id. (fmt verbs would append %!(EXTRA ...) to a
// shape without them, and the request, holding a space, was dropped.)
var fuzzRoutes = []string{
	"/v2/catalog",
	"/v2/service_instances/{instance}",
	"/v2/service_instances/{instance}/last_operation",
	"/v2/service_instances/{instance}/service_bindings/{binding}",
	"/v2/service_instances/{instance}/service_bindings/{binding}/last_operation",
	"/v2/{instance}",
	"/{instance}",
	"/dashboard/instances/{instance}",
	"/dashboard/instances/{instance}/login",
	"/dashboard/instances/{instance}/users",
	"/dashboard/instances/{instance}/queries/{binding}/cancel",
	"/api/instances/{instance}/users",
	"/api/instances/{instance}/users/{binding}",
	"/api/instances/{instance}/users/{binding}/password",
	"/api/instances/{instance}/extensions/{binding}",
	"/api/instances/{instance}/backups",
	"/api/instances/{instance}/backups/pitr-restore",
	"/api/instances/{instance}/backups/{binding}/download",
	"/api/instances/{instance}/backups/{binding}/restore",
	"/metrics",
	"/api/{instance}",
}

var fuzzMethods = []string{
	http.MethodGet, http.MethodPut, http.MethodPatch, http.MethodDelete, http.MethodPost, http.MethodHead,
	http.MethodOptions, "PROPFIND",
}

// FuzzRouter drives the whole router in process, with a real broker.Broker
// on a fresh state database: any method, route shape, instance and binding
// id (raw or escaped: unicode, "..", "%2F", very long), query string, body,
// credentials, version and originating identity, on the OSB API, the
// management API under /api/ (with stand-ins for the instances' databases)
// and /metrics. No answer may be 5xx, a 4xx must leave the state database as
// it was, and a request without the right credentials to anything behind
// them gets 401. Without DATABASE_URL it fails when CI=true (storetest).
// Without -fuzz only the seed corpus runs (testdata/fuzz/FuzzRouter and the
// seeds below).
func FuzzRouter(f *testing.F) {
	provision := `{"service_id":"postgresql","plan_id":"postgresql-sandbox","organization_guid":"org","space_guid":"space"}`
	identity := "cloudfoundry " + base64.StdEncoding.EncodeToString([]byte(`{"user_id":"u-1"}`))
	type seed struct {
		method            string
		route             uint8
		instance, binding string
		query             string
		body              string
		headers           uint8
		identity          string
	}
	for _, s := range []seed{
		{"GET", 0, "", "", "", "", 0, ""},
		{"GET", 0, "", "", "", "", fuzzNoAuth, ""},
		{"GET", 0, "", "", "", "", fuzzWrongAuth | fuzzNoVersion, ""},
		{"GET", 0, "", "", "", "", fuzzOldVersion, ""},
		{"PUT", 1, "fuzz-1", "", "accepts_incomplete=true", provision, fuzzJSONType | fuzzIdentity, identity},
		{"PUT", 1, "fuzz-1", "", "accepts_incomplete=true", strings.Replace(provision, "sandbox", "starter-512", 1), 0, ""},
		{"PUT", 1, "fuzz-2", "", "", provision, 0, ""},
		{"PUT", 1, "fuzz-3", "", "accepts_incomplete=true", `{"service_id":"postgresql","plan_id":"nope","organization_guid":"o","space_guid":"s"}`, 0, ""},
		{"PUT", 1, "fuzz-3", "", "accepts_incomplete=true", `{"service_id":1,"plan_id":[],"organization_guid":{},"space_guid":null}`, 0, ""},
		{"PUT", 1, "fuzz-3", "", "accepts_incomplete=true", `{"service_id":"postgresql",`, 0, ""},
		{"PUT", 1, "fuzz-3", "", "accepts_incomplete=true", `{"service_id":"postgresql","plan_id":"postgresql-sandbox","organization_guid":"o","space_guid":"s","parameters":{"shoe_size":42}}`, 0, ""},
		{"PUT", 1, "fuzz-3", "", "accepts_incomplete=true", `{"service_id":"postgresql","plan_id":"postgresql-business-512","organization_guid":"o","space_guid":"s"}`, 0, ""},
		{"PUT", 1, "fuzz-3", "", "accepts_incomplete=true", `{"service_id":"postgresql","plan_id":"postgresql-sandbox","organization_guid":"o","space_guid":"s","maintenance_info":{"version":"0.0.1"}}`, 0, ""},
		{"PUT", 1, "fuzz-3", "", "accepts_incomplete=true", provision, fuzzIdentity, "cloudfoundry WzFd"},
		{"PATCH", 1, "fuzz-1", "", "accepts_incomplete=true", `{"service_id":"postgresql","plan_id":"postgresql-starter-1024"}`, 0, ""},
		{"PATCH", 1, "fuzz-1", "", "accepts_incomplete=true", `{"service_id":"postgresql","parameters":"x"}`, 0, ""},
		{"PATCH", 1, "nope", "", "accepts_incomplete=true", `{"service_id":"postgresql"}`, 0, ""},
		{"DELETE", 1, "fuzz-1", "", "accepts_incomplete=true&service_id=postgresql&plan_id=postgresql-sandbox", "", 0, ""},
		{"DELETE", 1, "nope", "", "service_id=postgresql", "", 0, ""},
		{"GET", 1, "fuzz-1", "", "", "", 0, ""},
		{"GET", 2, "fuzz-1", "", "", "", 0, ""},
		{"GET", 2, "fuzz-1", "", "operation=not-an-operation&service_id=x&plan_id=y", "", 0, ""},
		{"GET", 2, "nope", "", "operation=%zz", "", 0, ""},
		{"PUT", 3, "fuzz-1", "b-1", "", `{"service_id":"postgresql","plan_id":"postgresql-sandbox","parameters":{"read_only":true}}`, 0, ""},
		{"PUT", 3, "fuzz-1", "b-1", "", `{"service_id":"postgresql","plan_id":"postgresql-sandbox","parameters":{"read_only":"yes"}}`, 0, ""},
		{"PUT", 3, "nope", "b-1", "", `{"service_id":"postgresql","plan_id":"postgresql-sandbox"}`, 0, ""},
		{"GET", 3, "fuzz-1", "b-1", "", "", 0, ""},
		{"DELETE", 3, "fuzz-1", "b-1", "service_id=postgresql&plan_id=postgresql-sandbox", "", 0, ""},
		{"GET", 4, "fuzz-1", "b-1", "operation=x", "", 0, ""},
		{"PUT", 3, "fuzz-ready", "b-1", "", `{"service_id":"postgresql","plan_id":"postgresql-starter-1024","parameters":{"read_only":true}}`, 0, ""},
		{"PUT", 3, "fuzz-ready", "b-1", "", `{"service_id":"postgresql","plan_id":"postgresql-starter-1024"}`, 0, ""},
		{"PUT", 3, "fuzz-ready", "b-2", "", `{"service_id":"postgresql","plan_id":"postgresql-starter-1024","bind_resource":{"app_guid":"app"}}`, fuzzIdentity, identity},
		{"GET", 3, "fuzz-ready", "b-1", "", "", 0, ""},
		{"GET", 1, "fuzz-ready", "", "", "", 0, ""},
		{"GET", 2, "fuzz-ready", "", "", "", 0, ""},
		{"DELETE", 3, "fuzz-ready", "b-2", "service_id=postgresql&plan_id=postgresql-starter-1024", "", 0, ""},
		{"DELETE", 3, "fuzz-ready", "b-2", "service_id=postgresql&plan_id=postgresql-starter-1024", "", 0, ""},
		{"PATCH", 1, "fuzz-ready", "", "accepts_incomplete=true", `{"service_id":"postgresql","plan_id":"postgresql-starter-512"}`, 0, ""},
		{"PATCH", 1, "fuzz-ready", "", "accepts_incomplete=true", `{"service_id":"postgresql","plan_id":"postgresql-business-1024"}`, 0, ""},
		{"PATCH", 1, "fuzz-ready-2", "", "accepts_incomplete=true", `{"service_id":"postgresql","plan_id":"postgresql-starter-2048","parameters":{"nope":1}}`, 0, ""},
		{"DELETE", 1, "fuzz-ready-2", "", "accepts_incomplete=true", "", 0, ""},
		{"DELETE", 1, "fuzz-ready-2", "", "", "", 0, ""},
		{"GET", 1, "../../healthz", "", "", "", 0, ""},
		{"GET", 1, "a/b", "", "", "", fuzzEscapeIDs, ""},
		{"GET", 1, "a%2Fb", "", "", "", 0, ""},
		{"PUT", 1, "%2e%2e", "", "accepts_incomplete=true", provision, 0, ""},
		{"GET", 1, "ünïcødé-☃-😀", "", "", "", fuzzEscapeIDs, ""},
		{"GET", 2, strings.Repeat("x", 5000), "", "", "", 0, ""},
		{"PUT", 3, "fuzz-1", strings.Repeat("€", 3000), "", `{"service_id":"postgresql","plan_id":"postgresql-sandbox"}`, fuzzEscapeIDs, ""},
		{"GET", 5, "catalog", "", "", "", 0, ""},
		{"GET", 6, "healthz", "", "", "", 0, ""},
		{"POST", 6, "readyz", "", "", "", 0, ""},
		{"OPTIONS", 1, "fuzz-1", "", "", "", 0, ""},
		{"PUT", 1, "fuzz-4", "", "accepts_incomplete=true", `{"a":"` + strings.Repeat("x", 5000) + `"}`, 0, ""},
		{"GET", 0, "", "", "", "", fuzzRequestID, "req-\u00e9"},
		{"PUT", 3, "fuzz-ready", "b-x", "", `{"service_id":"xxxx-xxxx-xxxx-xxxx","plan_id":"postgresql-starter-1024"}`, 0, ""},
		{"PUT", 3, "fuzz-ready", "b-x", "", `{"service_id":"postgresql","plan_id":"xxxx-xxxx-xxxx-xxxx"}`, 0, ""},
		{"DELETE", 3, "fuzz-ready", "b-1", "service_id=postgresql&plan_id=xxxx-xxxx-xxxx-xxxx", "", 0, ""},
		{"DELETE", 1, "fuzz-ready", "", "accepts_incomplete=true&service_id=xxxx-xxxx-xxxx-xxxx&plan_id=postgresql-starter-1024", "", 0, ""},
		{"PATCH", 1, "fuzz-ready", "", "accepts_incomplete=true", `{"service_id":"postgresql","plan_id":"xxxx-xxxx-xxxx-xxxx"}`, 0, ""},
		{"GET", 2, "fuzz-ready", "", "operation=provision", "", 0, ""},
		{"GET", 7, "fuzz-ready", "", "", "", fuzzNoAuth, ""},
		{"POST", 7, "fuzz-ready", "", "", "", fuzzNoAuth, ""},
		{"GET", 8, "fuzz-api", "", "", "", 0, ""},
		{"POST", 8, "fuzz-api", "", "", `{"username":"app_user","read_only":true}`, fuzzJSONType, ""},
		{"POST", 8, "fuzz-api", "", "", `{"username":"pgbroker_admin"}`, fuzzJSONType, ""},
		{"POST", 8, "nope", "", "", `{"username":"x"}`, fuzzNoAuth, ""},
		{"PUT", 10, "fuzz-api", "app_user", "", `{"password":"short"}`, fuzzJSONType, ""},
		{"DELETE", 9, "fuzz-api", "db_owner", "", "", 0, ""},
		{"PUT", 11, "fuzz-api", "pgcrypto", "", "", 0, ""},
		{"DELETE", 11, "fuzz-api", "../../etc", "", "", fuzzEscapeIDs, ""},
		{"POST", 12, "fuzz-api", "", "", "", 0, ""},
		{"GET", 12, "fuzz-api", "", "", "", fuzzWrongAuth, ""},
		{"POST", 13, "fuzz-api", "", "", `{"target_time":"yesterday"}`, fuzzJSONType, ""},
		{"GET", 14, "fuzz-api", "../../../../etc/passwd", "", "", fuzzEscapeIDs, ""},
		{"GET", 14, "fuzz-api", "b-1", "", "", 0, ""},
		{"POST", 15, "fuzz-api", "b-1", "", "", 0, ""},
		{"GET", 16, "", "", "", "", 0, ""},
		{"GET", 16, "", "", "", "", fuzzNoAuth, ""},
		{"GET", 17, "openapi.yaml", "", "", "", 0, ""},
	} {
		f.Add(s.method, s.route, s.instance, s.binding, s.query, []byte(s.body), s.headers, s.identity)
	}

	cat, err := catalog.Default()
	if err != nil {
		f.Fatal(err)
	}
	st := storetest.New(f)
	noEnqueue := func(context.Context, pgx.Tx, string) error { return nil }
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	b := broker.New(cat, st, noEnqueue, routerInstances{}, store.PortRange{Min: 1, Max: 1 << 20}, quiet)
	ready := func(id string) {
		spec, err := b.Provision(context.Background(), id, domain.ProvisionDetails{ServiceID: "postgresql",
			PlanID: "postgresql-starter-1024", OrganizationGUID: "org", SpaceGUID: "space"}, true)
		if err != nil {
			f.Fatalf("provision %s: %v", id, err)
		}
		if err := st.Instances().FinishOperation(context.Background(), spec.OperationData, store.Succeeded, "ready"); err != nil {
			f.Fatal(err)
		}
	}
	ready("fuzz-ready")
	ready("fuzz-ready-2")
	ready("fuzz-api") // the management API's seeds: no seed queues an operation on it first
	sessions := webauth.NewSessions([]byte("fuzz"), time.Hour, false)
	h := NewRouter(b, Options{
		Username: "broker", Password: "s3cret", MaxBodyBytes: 4096, Log: quiet,
		Checks:   []Check{{Name: "state_database", Fn: st.Ping}},
		Sessions: sessions, Origin: "http://127.0.0.1:8080",
		Dashboard: func(api http.Handler) http.Handler {
			d, err := dashboard.New(dashboard.Options{Store: st, Logins: refuseLogins{}, API: api, Sessions: sessions,
				Limiter: webauth.NewLimiter(webauth.DefaultLoginLimits), Base: "http://127.0.0.1:8080", Log: quiet})
			if err != nil {
				f.Fatal(err)
			}
			return d.Handler()
		},
		Management: mgmtapi.New(mgmtapi.Options{Store: st, Catalog: cat, Users: routerInstances{}, Extensions: routerInstances{},
			Dumps: routerInstances{}, EnqueueOp: noEnqueue, EnqueueBackup: noEnqueue, Log: quiet}).Handler(),
		Metrics: metrics.Handler(st.Backups(), quiet),
	})

	f.Fuzz(func(t *testing.T, method string, route uint8, instanceID, bindingID, query string, body []byte, headers uint8, identity string) {
		req := routerRequest(method, route, instanceID, bindingID, query, body, headers, identity)
		if req == nil {
			return // not a request line net/http would parse; the server answers 400 itself
		}
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		before := stateFingerprint(t, st)
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req.WithContext(ctx))
		what := fmt.Sprintf("%s %s (headers %#x, %d-byte body %.200q)", req.Method, req.URL.RequestURI(), headers, len(body), body)
		if rec.Code >= 500 {
			t.Fatalf("%s: status %d: %s", what, rec.Code, rec.Body.String())
		}
		if rec.Code >= 400 {
			if after := stateFingerprint(t, st); after != before {
				t.Fatalf("%s: status %d changed the state database:\nbefore %s\nafter  %s", what, rec.Code, before, after)
			}
		}
		badAuth := headers&(fuzzNoAuth|fuzzWrongAuth) != 0
		// /metrics answers GET only: other methods get 405 before the credentials are read.
		behindAuth := strings.HasPrefix(req.URL.Path, "/v2/") || strings.HasPrefix(req.URL.Path, "/api/") ||
			(req.URL.Path == "/metrics" && req.Method == http.MethodGet)
		if badAuth && behindAuth && rec.Code/100 != 3 && rec.Code != http.StatusUnauthorized {
			t.Fatalf("%s without the right credentials: status %d, want 401", what, rec.Code)
		}
	})
}

// routerRequest builds FuzzRouter's request, or nil when net/http would not
// parse its request line.
func routerRequest(method string, route uint8, instanceID, bindingID, query string, body []byte, headers uint8, identity string) *http.Request {
	if !isToken(method) {
		method = fuzzMethods[len(method)%len(fuzzMethods)]
	}
	if headers&fuzzEscapeIDs != 0 {
		instanceID, bindingID = url.PathEscape(instanceID), url.PathEscape(bindingID)
	}
	target := strings.NewReplacer("{instance}", instanceID, "{binding}", bindingID).Replace(fuzzRoutes[int(route)%len(fuzzRoutes)])
	if query != "" {
		target += "?" + query
	}
	u, err := url.ParseRequestURI(target)
	if err != nil || strings.ContainsAny(target, " \x00") {
		return nil
	}
	req := httptest.NewRequest(http.MethodGet, "/", bytes.NewReader(body))
	req.Method, req.URL, req.RequestURI = method, u, target
	if headers&fuzzNoAuth == 0 {
		if headers&fuzzWrongAuth != 0 {
			req.SetBasicAuth("broker", "wrong")
		} else {
			req.SetBasicAuth("broker", "s3cret")
		}
	}
	switch {
	case headers&fuzzNoVersion != 0:
	case headers&fuzzOldVersion != 0:
		req.Header.Set("X-Broker-API-Version", "2.12")
	default:
		req.Header.Set("X-Broker-API-Version", "2.17")
	}
	if headers&fuzzIdentity != 0 {
		req.Header.Set("X-Broker-API-Originating-Identity", identity)
	}
	if headers&fuzzRequestID != 0 {
		req.Header.Set("X-Broker-API-Request-Identity", identity)
	}
	if headers&fuzzJSONType != 0 {
		req.Header.Set("Content-Type", "application/json")
	}
	return req
}

// isToken reports whether s is an HTTP method net/http accepts (RFC 9110 token).
func isToken(s string) bool {
	if s == "" {
		return false
	}
	for _, c := range []byte(s) {
		if c <= ' ' || c >= 0x7f || strings.IndexByte(`"(),/:;<=>?@[\]{}`, c) >= 0 {
			return false
		}
	}
	return true
}

// stateFingerprint is the row count and an md5 of the contents of each
// broker table, so that any insert, update or delete shows.
func stateFingerprint(t *testing.T, st *store.Store) string {
	t.Helper()
	var fp string
	err := st.Pool().QueryRow(context.Background(), `SELECT concat_ws(' ',
		(SELECT count(*) || ':' || coalesce(md5(string_agg(i::text, ',' ORDER BY i.id)), '') FROM instances i),
		(SELECT count(*) || ':' || coalesce(md5(string_agg(o::text, ',' ORDER BY o.id)), '') FROM operations o),
		(SELECT count(*) || ':' || coalesce(md5(string_agg(b::text, ',' ORDER BY b.instance_id, b.id)), '') FROM bindings b),
		(SELECT count(*) || ':' || coalesce(md5(string_agg(k::text, ',' ORDER BY k.id)), '') FROM backups k),
		(SELECT count(*) FROM river_job))`).Scan(&fp)
	if err != nil {
		t.Fatalf("fingerprint the state database: %v", err)
	}
	return fp
}

// refuseLogins refuses every dashboard login.
type refuseLogins struct{}

func (refuseLogins) LogIn(context.Context, store.Instance, string, string) (users.User, error) {
	return users.User{}, webauth.ErrLoginRefused
}
