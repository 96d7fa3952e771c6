package acceptance

import (
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	osb "sigs.k8s.io/go-open-service-broker-client/v2"

	"github.com/pgbroker/pgbroker/webauth"
)

// noRedirect is an HTTP client that keeps a login's 303 and its cookie.
var noRedirect = &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}

// dashboardLogin logs in to instance id's dashboard as a browser on the
// broker's origin would, and returns the session cookie.
func dashboardLogin(t testing.TB, b *broker, id, username, password string) *http.Cookie {
	t.Helper()
	form := url.Values{"username": {username}, "password": {password}}
	req, err := http.NewRequest(http.MethodPost, b.url+"/dashboard/instances/"+id+"/login", strings.NewReader(form.Encode()))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Origin", b.url)
	resp, err := noRedirect.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusSeeOther || len(resp.Cookies()) != 1 {
		t.Fatalf("dashboard login as %s: %d, cookies %v", username, resp.StatusCode, resp.Cookies())
	}
	return resp.Cookies()[0]
}

// asBrowser sends method path body with cookie and headers, and returns the
// status and body.
func asBrowser(t testing.TB, b *broker, method, path, body string, cookie *http.Cookie, header map[string]string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(method, b.url+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if cookie != nil {
		req.AddCookie(cookie)
	}
	for k, v := range header {
		req.Header.Set(k, v)
	}
	resp, err := noRedirect.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	out, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(out)
}

var csrfField = regexp.MustCompile(`name="csrf" value="([0-9a-f]{64})"`)

// csrfOf reads the session's CSRF token from a dashboard page.
func csrfOf(t testing.TB, b *broker, id string, cookie *http.Cookie) string {
	t.Helper()
	status, page := asBrowser(t, b, http.MethodGet, "/dashboard/instances/"+id+"/overview", "", cookie, nil)
	m := csrfField.FindStringSubmatch(page)
	if status != 200 || m == nil {
		t.Fatalf("overview: %d, no CSRF token", status)
	}
	return m[1]
}

// TestDashboardSessionsCannotBeForgedOrCarriedToAnotherInstance: on the
// real broker, a dashboard session's writes to the management API without
// its CSRF token, from another origin, by a read-only user, or aimed at
// another instance (its id in the path, or the cookie renamed to that
// instance's) are 4xx, and no user is created; the same request with the
// token and the dashboard's origin creates one (the control).
func TestDashboardSessionsCannotBeForgedOrCarriedToAnotherInstance(t *testing.T) {
	b := newBroker(t)
	c := b.client()
	const plan = "postgresql-starter-512"
	id, otherID, creds, _ := twoStarters(t, c)
	roCreds := bind(t, c, id, uuid.NewString(), plan, map[string]any{"read_only": true})
	rw := dashboardLogin(t, b, id, creds["username"].(string), creds["password"].(string))
	ro := dashboardLogin(t, b, id, roCreds["username"].(string), roCreds["password"].(string))
	token, roToken := csrfOf(t, b, id, rw), csrfOf(t, b, id, ro)
	renamed := &http.Cookie{Name: webauth.CookieName(otherID), Value: rw.Value}
	users := func(inst string) string { return "/api/instances/" + inst + "/users" }
	create := func(name string) string { return `{"username":"` + name + `"}` }
	for _, tc := range []struct {
		name, path, body string
		cookie           *http.Cookie
		header           map[string]string
		want             int
	}{
		{"no CSRF token", users(id), create("forged_one"), rw, map[string]string{"Origin": b.url}, 403},
		{"another origin", users(id), create("forged_two"), rw, map[string]string{"Origin": "https://evil.example", "X-CSRF-Token": token}, 403},
		{"no origin", users(id), create("forged_three"), rw, map[string]string{"X-CSRF-Token": token}, 403},
		{"read-only user", users(id), create("forged_four"), ro, map[string]string{"Origin": b.url, "X-CSRF-Token": roToken}, 403},
		{"another instance's id", users(otherID), create("forged_five"), rw, map[string]string{"Origin": b.url, "X-CSRF-Token": token}, 401},
		{"cookie renamed to another instance's", users(otherID), create("forged_six"), renamed, map[string]string{"Origin": b.url, "X-CSRF-Token": token}, 401},
	} {
		tc.header["Content-Type"] = "application/json"
		if status, body := asBrowser(t, b, http.MethodPost, tc.path, tc.body, tc.cookie, tc.header); status != tc.want {
			t.Errorf("%s: %d %s, want %d", tc.name, status, body, tc.want)
		}
	}
	form := url.Values{"csrf": {token}, "username": {"forged_form"}}.Encode()
	if status, _ := asBrowser(t, b, http.MethodPost, "/dashboard/instances/"+id+"/users", form, rw,
		map[string]string{"Origin": "https://evil.example", "Content-Type": "application/x-www-form-urlencoded"}); status != 403 {
		t.Errorf("the dashboard's form from another origin: %d, want 403", status)
	}
	for _, inst := range []string{id, otherID} {
		var list struct{ Users []apiUser }
		b.apiCall(t, http.MethodGet, users(inst), "", &list)
		for _, u := range list.Users {
			if strings.HasPrefix(u.Username, "forged_") {
				t.Errorf("instance %s has user %s made by a refused request", inst, u.Username)
			}
		}
	}
	status, body := asBrowser(t, b, http.MethodPost, users(id), create("made_by_session"), rw,
		map[string]string{"Origin": b.url, "X-CSRF-Token": token, "Content-Type": "application/json"})
	var made apiUser
	_ = json.Unmarshal([]byte(body), &made)
	if status != 201 || made.Username != "made_by_session" {
		t.Fatalf("control, with the token and the dashboard's origin: %d %s, want 201", status, body)
	}
	if made.Password != "" {
		suite.addSecret(made.Password)
	}
}

// TestADashboardSessionEndsWhenItsUsersPasswordChanges: a user logged in
// to the dashboard whose password is then reset (by the owner, a script or
// the platform) loses the dashboard and its API within the session check's
// 30 s, without logging out.
func TestADashboardSessionEndsWhenItsUsersPasswordChanges(t *testing.T) {
	b := newBroker(t)
	c := b.client()
	const plan = "postgresql-starter-512"
	id := uuid.NewString()
	provision(t, c, id, plan)
	var made apiUser
	if status, body := b.apiCall(t, http.MethodPost, "/api/instances/"+id+"/users", `{"username":"rotated_user"}`, &made); status != 201 {
		t.Fatalf("create user: %d %s", status, body)
	}
	suite.addSecret(made.Password)
	cookie := dashboardLogin(t, b, id, "rotated_user", made.Password)
	users := "/api/instances/" + id + "/users"
	if status, _ := asBrowser(t, b, http.MethodGet, users, "", cookie, nil); status != 200 {
		t.Fatalf("the session reads the users: %d", status)
	}
	var reset apiUser
	if status, body := b.apiCall(t, http.MethodPut, users+"/rotated_user/password", `{}`, &reset); status != 200 {
		t.Fatalf("reset the password: %d %s", status, body)
	}
	suite.addSecret(reset.Password)
	deadline := time.Now().Add(40 * time.Second)
	for {
		status, _ := asBrowser(t, b, http.MethodGet, users, "", cookie, nil)
		if status == http.StatusUnauthorized {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("40 s after the password reset the old session still reads the users (%d)", status)
		}
		time.Sleep(time.Second)
	}
	if status, _ := asBrowser(t, b, http.MethodGet, "/dashboard/instances/"+id+"/overview", "", cookie, nil); status != http.StatusSeeOther {
		t.Errorf("the old session's overview: %d, want 303 to the login", status)
	}
}

// twoStarters provisions two Starter instances and binds each once: their
// ids and the bindings' credentials.
func twoStarters(t *testing.T, c osb.Client) (id, otherID string, creds, otherCreds map[string]any) {
	t.Helper()
	const plan = "postgresql-starter-512"
	id, otherID = uuid.NewString(), uuid.NewString()
	provision(t, c, id, plan)
	provision(t, c, otherID, plan)
	return id, otherID, bind(t, c, id, uuid.NewString(), plan, nil), bind(t, c, otherID, uuid.NewString(), plan, nil)
}
