package dashboard_test

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/pgbroker/pgbroker/dashboard"
	"github.com/pgbroker/pgbroker/store"
	"github.com/pgbroker/pgbroker/store/storetest"
	"github.com/pgbroker/pgbroker/users"
	"github.com/pgbroker/pgbroker/webauth"
)

const base = "https://broker.example.com/pg"

// stubAPI answers the management API's reads with fixed JSON and records
// every request it gets, with the caller webauth's Guard put in its context.
type stubAPI struct {
	mu    sync.Mutex
	calls []string
}

var answers = map[string]string{
	"":            `{"instance_id":"x","plan_id":"postgresql-starter-512","plan_name":"starter-512","nodes":1,"memory_mib":512,"max_connections":100,"postgresql_version":"15.18","force_tls":false,"upgrades":[{"version":"15.20","kind":"minor","effect":"The node restarts on the new binaries."},{"version":"18.6","kind":"major","effect":"pg_upgrade --check runs first.","blocked":"the instance runs PostgreSQL 15.18: upgrade it to 15.20 first"}],"last_operation":{"kind":"provision","state":"succeeded","description":"ready","updated_at":"2026-12-07T10:00:00Z"}}`,
	"/stats":      `{"taken_at":"2026-12-07T10:00:00Z","nodes":[{"name":"node-0","allocation_id":"a","cpu_percent":12.5,"memory_bytes":183853056,"memory_max_bytes":200000000,"memory_limit_bytes":536870912,"swap_bytes":0,"swap_max_bytes":0,"swap_limit_bytes":0}],"database":{"connections":3,"max_connections":60,"data_size_bytes":12492135,"disk_size_bytes":69278373}}`,
	"/metrics":    `{"range":"1h","step_seconds":15,"points":[{"at":"2026-12-07T10:00:00Z","cpu_percent":1,"memory_bytes":1,"swap_bytes":0,"connections":1,"data_size_bytes":1,"disk_size_bytes":1}]}`,
	"/queries":    `{"queries":[{"pid":4242,"username":"u_aaaaaaaaaaaa","application":"psql","client":"127.0.0.1","state":"active","idle":false,"backend_start":"2026-12-07T10:00:00Z","query_start":"2026-12-07T10:00:01Z","duration_seconds":61.5,"query":"SELECT pg_sleep(600)"}],"idle_hidden":2}`,
	"/users":      `{"users":[{"username":"db_aaaaaaaaaaaa","read_only":false,"protected":true,"binding":false,"can_login":false,"password_encryption":"none"},{"username":"reporting","read_only":true,"protected":false,"binding":false,"can_login":true,"password_encryption":"SCRAM-SHA-256"}]}`,
	"/extensions": `{"extensions":[{"name":"pgcrypto","enabled":true,"version":"1.3","requires_restart":false},{"name":"pg_stat_statements","enabled":false,"requires_restart":true}]}`,
	"/backups":    `{"backups":[{"id":"b1","instance_id":"x","kind":"manual","status":"succeeded","created_at":"2026-12-07T09:00:00Z","finished_at":"2026-12-07T09:00:05Z","size_bytes":123456,"sha256":"abc123"}],"health":{"last_success_at":"2026-12-07T09:00:05Z","max_age_seconds":93600,"stale":false},"schedule":{"backup_time":"01:00","backup_time_zone":"Europe/Paris","next_run_at":"2026-12-08T00:00:00Z"},"pitr":{"window_days":7,"earliest_target_time":"2026-12-06T00:00:00Z"}}`,
}

func (a *stubAPI) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	c := webauth.CallerOf(r.Context())
	who := "nobody"
	if c.Session != nil {
		who = c.Session.Username
	}
	a.mu.Lock()
	a.calls = append(a.calls, r.Method+" "+r.URL.RequestURI()+" as "+who)
	a.mu.Unlock()
	rest := r.URL.Path[strings.Index(r.URL.Path, "/api/instances/")+len("/api/instances/"):]
	_, rest, _ = strings.Cut(rest, "/")
	if rest != "" {
		rest = "/" + rest
	}
	w.Header().Set("Content-Type", "application/json")
	if r.Method != http.MethodGet {
		_, _ = io.WriteString(w, `{"pid":4242}`)
		return
	}
	_, _ = io.WriteString(w, answers[rest])
}

func (a *stubAPI) writes() []string {
	a.mu.Lock()
	defer a.mu.Unlock()
	var out []string
	for _, c := range a.calls {
		if !strings.HasPrefix(c, "GET ") {
			out = append(out, c)
		}
	}
	return out
}

// logins knows one password per username; reporting is read-only.
type logins map[string]string

func (l logins) LogIn(_ context.Context, _ store.Instance, username, password string) (users.User, error) {
	if p, ok := l[username]; !ok || p != password {
		return users.User{}, webauth.ErrLoginRefused
	}
	return users.User{Username: username, ReadOnly: username == "reporting", CanLogin: true}, nil
}

type fixture struct {
	srv      http.Handler
	api      *stubAPI
	sessions *webauth.Sessions
	inst     store.Instance
	st       *store.Store
}

func newFixture(t *testing.T, limits webauth.LoginLimits) fixture {
	t.Helper()
	st := storetest.New(t)
	ctx := context.Background()
	in := store.Instance{ID: uuid.NewString(), ShortID: "aaaaaaaaaaaa", ServiceID: "postgresql", PlanID: "postgresql-starter-512",
		OrganizationGUID: "o", SpaceGUID: "s"}
	op := store.Operation{ID: uuid.NewString(), Kind: store.KindProvision, PlanID: in.PlanID, Description: "queued"}
	in, err := st.Instances().CreateInstance(ctx, in, op, store.PortRange{Min: 40000, Max: 40100},
		func(context.Context, pgx.Tx, string) error { return nil })
	if err != nil {
		t.Fatal(err)
	}
	sessions := webauth.NewSessions([]byte("test key"), time.Hour, true)
	api := &stubAPI{}
	guarded := sessions.Guard(func(*http.Request) bool { return false }, "https://broker.example.com", api)
	d, err := dashboard.New(dashboard.Options{Store: st, Logins: logins{"u_aaaaaaaaaaaa": "right-password", "reporting": "reader-password"},
		API: guarded, Sessions: sessions, Limiter: webauth.NewLimiter(limits), Base: base})
	if err != nil {
		t.Fatal(err)
	}
	return fixture{srv: d.Handler(), api: api, sessions: sessions, inst: in, st: st}
}

// send makes a request as a browser on the dashboard's origin would (the
// broker sees paths without the /pg prefix its proxy strips).
func (f fixture) send(method, path string, form url.Values, cookie *http.Cookie, origin string) *httptest.ResponseRecorder {
	var body io.Reader
	if form != nil {
		body = strings.NewReader(form.Encode())
	}
	r := httptest.NewRequest(method, "/dashboard/instances/"+f.inst.ID+path, body)
	if form != nil {
		r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	if origin != "" {
		r.Header.Set("Origin", origin)
	}
	if cookie != nil {
		r.AddCookie(cookie)
	}
	w := httptest.NewRecorder()
	f.srv.ServeHTTP(w, r)
	return w
}

const origin = "https://broker.example.com"

func (f fixture) login(t *testing.T, user, password string) (*http.Cookie, webauth.Session) {
	t.Helper()
	w := f.send("POST", "/login", url.Values{"username": {user}, "password": {password}}, nil, origin)
	if w.Code != http.StatusSeeOther || w.Header().Get("Location") != "/pg/dashboard/instances/"+f.inst.ID+"/overview" {
		t.Fatalf("login %s: %d %v", user, w.Code, w.Header())
	}
	c := w.Result().Cookies()[0]
	ss, err := f.sessions.Open(c.Value, f.inst.ID, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	return c, ss
}

// TestLoginChecksTheDatabaseAndRefusesOtherOriginsAndGuessing: a wrong
// password is 401 without a cookie; a login posted from another origin is
// 403 and uncounted; past the limit per client (3), 429 even with the right password; the
// right one gives a Secure, HttpOnly, SameSite=Strict cookie of this
// instance.
func TestLoginChecksTheDatabaseAndRefusesOtherOriginsAndGuessing(t *testing.T) {
	f := newFixture(t, webauth.LoginLimits{ClientEvery: time.Hour, ClientBurst: 3, InstanceEvery: time.Hour, InstanceBurst: 100})
	form := func(p string) url.Values { return url.Values{"username": {"u_aaaaaaaaaaaa"}, "password": {p}} }
	if w := f.send("POST", "/login", form("wrong"), nil, origin); w.Code != 401 || len(w.Result().Cookies()) != 0 || !strings.Contains(w.Body.String(), "Wrong username or password") {
		t.Fatalf("wrong password: %d %v", w.Code, w.Result().Cookies())
	}
	if w := f.send("POST", "/login", form("right-password"), nil, "https://evil.example"); w.Code != 403 || len(w.Result().Cookies()) != 0 {
		t.Fatalf("login from another origin: %d", w.Code)
	}
	c, ss := f.login(t, "u_aaaaaaaaaaaa", "right-password")
	if !c.Secure || !c.HttpOnly || c.SameSite != http.SameSiteStrictMode || ss.ReadOnly || ss.Username != "u_aaaaaaaaaaaa" {
		t.Fatalf("cookie %+v, session %+v", c, ss)
	}
	f.send("POST", "/login", form("wrong"), nil, origin)
	if w := f.send("POST", "/login", form("right-password"), nil, origin); w.Code != 429 || w.Header().Get("Retry-After") == "" || len(w.Result().Cookies()) != 0 {
		t.Fatalf("fourth attempt of one client: %d, want 429 with Retry-After and no session", w.Code)
	}
}

// TestEveryTabRendersFromTheAPIWithTheUsersSession: each tab asks the API
// as the logged-in user and shows its answer; without a session a tab
// sends the browser to the login.
func TestEveryTabRendersFromTheAPIWithTheUsersSession(t *testing.T) {
	f := newFixture(t, webauth.DefaultLoginLimits)
	c, _ := f.login(t, "u_aaaaaaaaaaaa", "right-password")
	for tab, want := range map[string]string{"/overview": "175.3 MiB", "/metrics": `"cpu_percent":1`, "/queries": "SELECT pg_sleep(600)", "/users": "owner (protected)",
		"/extensions": "pg_stat_statements", "/backups": "120.6 KiB", "/settings": "Turn Force TLS on"} {
		w := f.send("GET", tab, nil, c, "")
		body := w.Body.String()
		if w.Code != 200 || !strings.Contains(body, want) || strings.Contains(body, "no value") {
			t.Errorf("%s: %d, want 200 showing %q:\n%.600s", tab, w.Code, want, body)
		}
		if csp := w.Header().Get("Content-Security-Policy"); !strings.Contains(csp, "frame-ancestors 'none'") || strings.Contains(csp, "unsafe") {
			t.Errorf("%s: CSP %q", tab, csp)
		}
		if w := f.send("GET", tab, nil, nil, ""); w.Code != http.StatusSeeOther || !strings.HasSuffix(w.Header().Get("Location"), "/login") {
			t.Errorf("%s without a session: %d %s", tab, w.Code, w.Header().Get("Location"))
		}
	}
	for _, call := range f.api.calls {
		if !strings.HasSuffix(call, " as u_aaaaaaaaaaaa") {
			t.Errorf("the API was called %q, want as the logged-in user", call)
		}
	}
}

// TestActionsAskFirstAndRefuseForgedOrReadOnlyRequests: an action without
// its CSRF token, from another origin, by a read-only user, with another
// instance's session or an expired one does nothing; a destructive one
// shows its question first and acts only once confirmed.
func TestActionsAskFirstAndRefuseForgedOrReadOnlyRequests(t *testing.T) {
	f := newFixture(t, webauth.DefaultLoginLimits)
	c, ss := f.login(t, "u_aaaaaaaaaaaa", "right-password")
	roCookie, ro := f.login(t, "reporting", "reader-password")
	other := f.sessions.New(uuid.NewString(), "u_aaaaaaaaaaaa", false, time.Now())
	otherCookie := &http.Cookie{Name: webauth.CookieName(f.inst.ID), Value: f.sessions.Seal(other)}
	expired := f.sessions.New(f.inst.ID, "u_aaaaaaaaaaaa", false, time.Now().Add(-2*time.Hour))
	expiredCookie := &http.Cookie{Name: webauth.CookieName(f.inst.ID), Value: f.sessions.Seal(expired)}
	confirmed := func(token string) url.Values { return url.Values{"csrf": {token}, "confirmed": {"yes"}} }
	for _, tc := range []struct {
		name   string
		form   url.Values
		cookie *http.Cookie
		origin string
		want   int
	}{
		{"no CSRF token", url.Values{"confirmed": {"yes"}}, c, origin, 403},
		{"another session's token", confirmed(ro.CSRF), c, origin, 403},
		{"another origin", confirmed(ss.CSRF), c, "https://evil.example", 403},
		{"read-only user", confirmed(ro.CSRF), roCookie, origin, 403},
		{"another instance's session", confirmed(other.CSRF), otherCookie, origin, 303},
		{"expired session", confirmed(expired.CSRF), expiredCookie, origin, 303},
	} {
		if w := f.send("POST", "/queries/4242/terminate", tc.form, tc.cookie, tc.origin); w.Code != tc.want {
			t.Errorf("%s: %d, want %d", tc.name, w.Code, tc.want)
		}
	}
	w := f.send("POST", "/queries/4242/terminate", url.Values{"csrf": {ss.CSRF}}, c, origin)
	if w.Code != 200 || !strings.Contains(w.Body.String(), "End session 4242?") || len(f.api.writes()) != 0 {
		t.Fatalf("unconfirmed terminate: %d, writes %v\n%.400s", w.Code, f.api.writes(), w.Body.String())
	}
	w = f.send("POST", "/queries/4242/terminate", confirmed(ss.CSRF), c, origin)
	if w.Code != 200 || !strings.Contains(w.Body.String(), "Session 4242 was ended") {
		t.Fatalf("confirmed terminate: %d\n%.400s", w.Code, w.Body.String())
	}
	if got := f.api.writes(); len(got) != 1 || got[0] != "POST /api/instances/"+f.inst.ID+"/queries/4242/terminate as u_aaaaaaaaaaaa" {
		t.Fatalf("API writes %v, want the one confirmed terminate", got)
	}
	for _, page := range []string{"/queries", "/users", "/backups", "/settings", "/extensions"} {
		body := f.send("GET", page, nil, roCookie, "").Body.String()
		if strings.Contains(body, `type="submit" class=`) || strings.Contains(body, "Create") || strings.Contains(body, "Back up now") ||
			strings.Contains(body, "Turn Force TLS") || strings.Contains(body, ">Enable<") {
			t.Errorf("read-only user sees an action on %s", page)
		}
	}
}

// TestTheSessionEndsWhenItsUserIsGone: Check refuses a session whose user
// was deleted, made read-only or given a new password, or whose instance is
// unknown.
func TestTheSessionEndsWhenItsUserIsGone(t *testing.T) {
	f := newFixture(t, webauth.DefaultLoginLimits)
	lookup := userLookup{"u_aaaaaaaaaaaa": {Username: "u_aaaaaaaaaaaa", CanLogin: true, PasswordStamp: "0123456789abcdef"},
		"reporting": {Username: "reporting", ReadOnly: false, CanLogin: true}}
	check := dashboard.Check(f.st, lookup)
	ctx := context.Background()
	for _, tc := range []struct {
		ss      webauth.Session
		refused bool
	}{
		{webauth.Session{InstanceID: f.inst.ID, Username: "u_aaaaaaaaaaaa", Stamp: "0123456789abcdef"}, false},
		{webauth.Session{InstanceID: f.inst.ID, Username: "u_aaaaaaaaaaaa", Stamp: "fedcba9876543210"}, true}, // the password changed since
		{webauth.Session{InstanceID: f.inst.ID, Username: "deleted_user"}, true},
		{webauth.Session{InstanceID: f.inst.ID, Username: "reporting", ReadOnly: true}, true},
		{webauth.Session{InstanceID: uuid.NewString(), Username: "u_aaaaaaaaaaaa"}, true},
	} {
		err := check(ctx, tc.ss)
		if (err != nil) != tc.refused {
			t.Errorf("%+v: %v, refused want %v", tc.ss, err, tc.refused)
		}
	}
}

type userLookup map[string]users.User

func (l userLookup) User(_ context.Context, _ store.Instance, name string) (users.User, error) {
	u, ok := l[name]
	if !ok {
		return u, users.ErrUserNotFound
	}
	return u, nil
}

// TestSettingsOffersEachUpgradeAndAsksFirst: the settings tab lists the
// summary's upgrades, a button for the one the instance may take and the
// reason for the blocked one; the button asks first and, confirmed, posts
// the management API's upgrade as the logged-in user.
func TestSettingsOffersEachUpgradeAndAsksFirst(t *testing.T) {
	f := newFixture(t, webauth.DefaultLoginLimits)
	c, ss := f.login(t, "u_aaaaaaaaaaaa", "right-password")
	body := f.send("GET", "/settings", nil, c, "").Body.String()
	for _, want := range []string{"PostgreSQL 15.20</strong> (minor upgrade)", "Upgrade to 15.20", "PostgreSQL 18.6</strong> (major upgrade)",
		"Not yet: the instance runs PostgreSQL 15.18: upgrade it to 15.20 first", "cf update-service &lt;name&gt; --upgrade", "postgresql_version"} {
		if !strings.Contains(body, want) {
			t.Errorf("settings does not show %q:\n%s", want, body)
		}
	}
	if strings.Contains(body, "Upgrade to 18.6") {
		t.Error("settings offers a button for the blocked major upgrade")
	}
	form := url.Values{"csrf": {ss.CSRF}, "postgresql_version": {"15.20"}, "kind": {"minor"}}
	w := f.send("POST", "/settings/upgrade", form, c, origin)
	if w.Code != 200 || !strings.Contains(w.Body.String(), "Upgrade the database to PostgreSQL 15.20?") || len(f.api.writes()) != 0 {
		t.Fatalf("unconfirmed upgrade: %d, writes %v\n%.400s", w.Code, f.api.writes(), w.Body.String())
	}
	form.Set("confirmed", "yes")
	w = f.send("POST", "/settings/upgrade", form, c, origin)
	if w.Code != 200 || !strings.Contains(w.Body.String(), "The upgrade to PostgreSQL 15.20 started") {
		t.Fatalf("confirmed upgrade: %d\n%.400s", w.Code, w.Body.String())
	}
	if got := f.api.writes(); len(got) != 1 || got[0] != "POST /api/instances/"+f.inst.ID+"/upgrade as u_aaaaaaaaaaaa" {
		t.Fatalf("API writes %v, want the one confirmed upgrade", got)
	}
}

// TestBackupsSaysWhyPointInTimeRecoveryIsOff: an instance whose major the
// clients' pgBackRest does not archive (after a major upgrade) has no
// window; the backups tab says why instead.
func TestBackupsSaysWhyPointInTimeRecoveryIsOff(t *testing.T) {
	before := answers["/backups"]
	t.Cleanup(func() { answers["/backups"] = before })
	answers["/backups"] = `{"backups":[],"health":{"last_success_at":null,"max_age_seconds":93600,"stale":false},"pitr_off":"point-in-time recovery is off on PostgreSQL 18.6: the clients' pgBackRest archives majors up to 15"}`
	f := newFixture(t, webauth.DefaultLoginLimits)
	c, _ := f.login(t, "u_aaaaaaaaaaaa", "right-password")
	body := f.send("GET", "/backups", nil, c, "").Body.String()
	if !strings.Contains(body, `id="pitr-off">point-in-time recovery is off on PostgreSQL 18.6`) || strings.Contains(body, "pitr-form") {
		t.Fatalf("backups tab of an instance without point-in-time recovery:\n%s", body)
	}
}
