package webauth

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

var now = time.Date(2026, 12, 7, 12, 0, 0, 0, time.UTC)

func TestSessionOpensOnlyForItsInstanceUntouchedAndUnexpired(t *testing.T) {
	s := NewSessions([]byte("secret"), time.Hour, true)
	ss := s.New("inst-a", "alice", false, now)
	value := s.Seal(ss)
	got, err := s.Open(value, "inst-a", now.Add(59*time.Minute))
	if err != nil || got.Username != "alice" || got.CSRF != ss.CSRF || got.ReadOnly {
		t.Fatalf("Open = %+v, %v; want alice's session", got, err)
	}
	body, sig, _ := strings.Cut(value, ".")
	forged := NewSessions([]byte("other"), time.Hour, true).Seal(ss)
	for name, tc := range map[string]struct {
		value, instance string
		at              time.Time
	}{
		"another instance":      {value, "inst-b", now},
		"expired":               {value, "inst-a", now.Add(time.Hour)},
		"signed with other key": {forged, "inst-a", now},
		"body changed":          {body + "x." + sig, "inst-a", now},
		"no signature":          {body, "inst-a", now},
		"empty":                 {"", "inst-a", now},
	} {
		if _, err := s.Open(tc.value, tc.instance, tc.at); err != ErrNoSession {
			t.Errorf("%s: Open err = %v, want ErrNoSession", name, err)
		}
	}
}

func TestCookieIsHttpOnlyStrictSecureAndNamedPerInstance(t *testing.T) {
	s := NewSessions([]byte("secret"), time.Hour, true)
	c := s.Cookie(s.New("inst-a", "alice", false, time.Now()))
	if !c.HttpOnly || !c.Secure || c.SameSite != http.SameSiteStrictMode || c.Path != "/" || c.MaxAge <= 0 {
		t.Fatalf("cookie %+v", c)
	}
	if CookieName("inst-a") == CookieName("inst-b") {
		t.Fatal("two instances share a cookie name")
	}
	if NewSessions([]byte("k"), time.Hour, false).Cookie(s.New("i", "u", false, time.Now())).Secure {
		t.Fatal("Secure over plain HTTP: the browser would drop the cookie")
	}
}

const origin = "https://broker.example.com"

// api is a Guard in front of a handler recording the caller it saw.
func api(t *testing.T, s *Sessions) (http.Handler, *[]Caller) {
	var seen []Caller
	h := s.Guard(func(r *http.Request) bool { _, p, ok := r.BasicAuth(); return ok && p == "broker-pass" }, origin,
		http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { seen = append(seen, CallerOf(r.Context())) }))
	return h, &seen
}

func TestGuardAdmitsTheOperatorAndSessionsOfThePathsInstanceOnly(t *testing.T) {
	s := NewSessions([]byte("secret"), time.Hour, true)
	rw := s.New("inst-a", "alice", false, time.Now())
	ro := s.New("inst-a", "reader", true, time.Now())
	expired := s.New("inst-a", "alice", false, time.Now().Add(-2*time.Hour))
	h, seen := api(t, s)
	for _, tc := range []struct {
		name, method, path string
		session            *Session
		csrf, origin       string
		operator           bool
		want               int
	}{
		{"operator", http.MethodPost, "/api/instances/inst-b/backups", nil, "", "", true, 200},
		{"session reads its instance", http.MethodGet, "/api/instances/inst-a/users", &rw, "", "", false, 200},
		{"read-only session reads", http.MethodGet, "/api/instances/inst-a/users", &ro, "", "", false, 200},
		{"session writes with token and origin", http.MethodPost, "/api/instances/inst-a/backups", &rw, rw.CSRF, origin, false, 200},
		{"another instance's id in the path", http.MethodGet, "/api/instances/inst-b/users", &rw, "", "", false, 401},
		{"no token", http.MethodPost, "/api/instances/inst-a/backups", &rw, "", origin, false, 403},
		{"another session's token", http.MethodPost, "/api/instances/inst-a/backups", &rw, ro.CSRF, origin, false, 403},
		{"wrong origin", http.MethodDelete, "/api/instances/inst-a/users/bob", &rw, rw.CSRF, "https://evil.example", false, 403},
		{"no origin", http.MethodDelete, "/api/instances/inst-a/users/bob", &rw, rw.CSRF, "", false, 403},
		{"read-only session writes", http.MethodPost, "/api/instances/inst-a/backups", &ro, ro.CSRF, origin, false, 403},
		{"expired session", http.MethodGet, "/api/instances/inst-a/users", &expired, "", "", false, 401},
		{"nothing", http.MethodGet, "/api/instances/inst-a/users", nil, "", "", false, 401},
		{"document", http.MethodGet, "/api/openapi.yaml", nil, "", "", false, 200},
	} {
		*seen = nil
		r := httptest.NewRequest(tc.method, tc.path, nil)
		if tc.operator {
			r.SetBasicAuth("broker", "broker-pass")
		}
		if tc.session != nil {
			r.AddCookie(&http.Cookie{Name: CookieName(tc.session.InstanceID), Value: s.Seal(*tc.session)})
		}
		if tc.csrf != "" {
			r.Header.Set(CSRFHeader, tc.csrf)
		}
		if tc.origin != "" {
			r.Header.Set("Origin", tc.origin)
		}
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		if w.Code != tc.want {
			t.Errorf("%s: status %d, want %d (%s)", tc.name, w.Code, tc.want, w.Body)
		}
		if tc.want != 200 && len(*seen) != 0 {
			t.Errorf("%s: refused, yet the API ran", tc.name)
		}
		if tc.want == 200 && tc.session != nil && ((*seen)[0].Session == nil || (*seen)[0].Session.Username != tc.session.Username) {
			t.Errorf("%s: the API saw caller %+v", tc.name, (*seen)[0])
		}
	}
}

func TestCallerRights(t *testing.T) {
	rw, ro := Caller{Session: &Session{Username: "alice"}}, Caller{Session: &Session{Username: "reader", ReadOnly: true}}
	if !(Caller{Operator: true}).MayChange() || !rw.MayChange() || ro.MayChange() || (Caller{}).MayChange() {
		t.Fatal("MayChange: operator and read-write users only")
	}
	if !rw.SeesTextOf("bob") || ro.SeesTextOf("bob") || !ro.SeesTextOf("reader") || (Caller{}).SeesTextOf("x") {
		t.Fatal("SeesTextOf: a read-only user sees its own queries' text only")
	}
}

func TestLoginAttemptsAreLimitedPerClientAndPerInstance(t *testing.T) {
	l := NewLimiter(LoginLimits{ClientEvery: time.Minute, ClientBurst: 3, InstanceEvery: time.Minute, InstanceBurst: 4})
	for i := 0; i < 3; i++ {
		if ok, _ := l.Allow("10.0.0.1", "inst-a", now); !ok {
			t.Fatalf("attempt %d refused within the burst", i+1)
		}
	}
	ok, wait := l.Allow("10.0.0.1", "inst-a", now)
	if ok || wait <= 0 || wait > time.Minute {
		t.Fatalf("4th attempt of one client: allowed %v, wait %s; want refused for up to a minute", ok, wait)
	}
	if ok, _ := l.Allow("10.0.0.1", "inst-a", now.Add(time.Minute)); !ok {
		t.Fatal("a minute later the client gets one more attempt")
	}
	// The instance's bucket (4, one back after a minute) has one token left: one more client gets it.
	if ok, _ := l.Allow("10.0.0.2", "inst-a", now.Add(time.Minute)); !ok {
		t.Fatal("another client refused before the instance's burst ran out")
	}
	if ok, _ := l.Allow("10.0.0.3", "inst-a", now.Add(time.Minute)); ok {
		t.Fatal("many clients against one instance passed its limit")
	}
	if ok, _ := l.Allow("10.0.0.3", "inst-b", now.Add(time.Minute)); !ok {
		t.Fatal("a refusal on one instance charged that client's attempt on another")
	}
}

// TestRevalidationAsksOncePerIntervalAndEndsARefusedSession: the check
// runs at most once per interval for a session that passed; a refusal
// (ErrLoginRefused) ends the session at once; another error lets the
// request through without being remembered.
func TestRevalidationAsksOncePerIntervalAndEndsARefusedSession(t *testing.T) {
	s := NewSessions([]byte("secret"), time.Hour, false)
	var asked int
	var verdict error
	s.Revalidate(func(context.Context, Session) error { asked++; return verdict }, time.Hour)
	ss := s.New("inst-a", "alice", false, time.Now())
	r := httptest.NewRequest(http.MethodGet, "/", nil)
	r.AddCookie(s.Cookie(ss))
	for i := 0; i < 3; i++ {
		if _, err := s.Verify(context.Background(), r, "inst-a"); err != nil {
			t.Fatal(err)
		}
	}
	if asked != 1 {
		t.Fatalf("asked %d times in one interval, want 1", asked)
	}
	other := s.New("inst-a", "bob", false, time.Now())
	r2 := httptest.NewRequest(http.MethodGet, "/", nil)
	r2.AddCookie(s.Cookie(other))
	verdict = errors.New("the instance restarts")
	for i := 0; i < 2; i++ {
		if _, err := s.Verify(context.Background(), r2, "inst-a"); err != nil {
			t.Fatalf("a failed check refused the session: %v", err)
		}
	}
	verdict = fmt.Errorf("user bob: %w", ErrLoginRefused)
	if _, err := s.Verify(context.Background(), r2, "inst-a"); !errors.Is(err, ErrLoginRefused) {
		t.Fatalf("a refused user: %v, want ErrLoginRefused (a failed check must not be remembered as passed)", err)
	}
	if asked != 4 {
		t.Fatalf("asked %d times, want 4", asked)
	}
}
