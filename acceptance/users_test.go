package acceptance

import (
	"context"
	"encoding/json"
	"errors"
	"net/url"
	"strings"
	"testing"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgconn"
)

// apiCall sends a management API request and decodes the JSON answer into out (when not nil).
func (b *broker) apiCall(t *testing.T, method, path, body string, out any) (int, string) {
	t.Helper()
	status, resp := b.raw(method, path, body, nil)
	if out != nil && resp != "" {
		if err := json.Unmarshal([]byte(resp), out); err != nil {
			t.Fatalf("%s %s answered %d with non-JSON %q", method, path, status, resp)
		}
	}
	return status, resp
}

type apiUser struct {
	Username           string `json:"username"`
	ReadOnly           bool   `json:"read_only"`
	Protected          bool   `json:"protected"`
	Binding            bool   `json:"binding"`
	PasswordEncryption string `json:"password_encryption"`
	Password           string `json:"password"`
}

// userURL is a DATABASE_URL for another user of the same database.
func userURL(t *testing.T, databaseURL, username, password string) string {
	t.Helper()
	u, err := url.Parse(databaseURL)
	if err != nil {
		t.Fatal(err)
	}
	u.User = url.UserPassword(username, password)
	out := u.String()
	if f, ok := rootCerts.Load(databaseURL); ok {
		rootCerts.Store(out, f)
	}
	suite.addSecret(password)
	return out
}

// TestDatabaseUsersLifecycle: list (the protected owner and binding users,
// marked), create read-write and read-only users, a generated password
// returned once, change a password, delete; a read-only user reads and gets
// 42501 on write; a deleted user cannot log in; the protected user cannot be
// deleted; each naming and password rule is refused at its bounds, changing
// nothing.
func TestDatabaseUsersLifecycle(t *testing.T) {
	b := newBroker(t)
	c := b.client()
	id := provisionTemporary(t, c, "postgresql-sandbox")
	creds := bind(t, c, id, uuid.NewString(), "postgresql-sandbox", nil)
	uri := creds["DATABASE_URL"].(string)
	base := "/api/instances/" + id + "/users"
	ctx := context.Background()

	app := connect(t, uri)
	mustExec(t, app, "CREATE TABLE notes (id serial PRIMARY KEY, body text)")
	mustExec(t, app, "INSERT INTO notes (body) VALUES ('hello')")

	var list struct{ Users []apiUser }
	if status, body := b.apiCall(t, "GET", base, "", &list); status != 200 {
		t.Fatalf("list users: %d %s", status, body)
	}
	var owner string
	for _, u := range list.Users {
		switch {
		case u.Protected:
			owner = u.Username
		case u.Username == creds["username"]:
			if !u.Binding || u.PasswordEncryption != "SCRAM-SHA-256" {
				t.Errorf("binding user listed as %+v", u)
			}
		}
	}
	if owner == "" || len(list.Users) != 2 {
		t.Fatalf("users %+v: want the protected owner and the binding user", list.Users)
	}

	// Bad input at every rule's bounds: 400 naming the rule, and no user more.
	bad := []struct{ body, rule string }{
		{`{"username":"abcde","password":"goodpass1"}`, "UsernameLength"},
		{`{"username":"a` + strings.Repeat("b", 32) + `","password":"goodpass1"}`, "UsernameLength"},
		{`{"username":"bad-name","password":"goodpass1"}`, "UsernameCharacters"},
		{`{"username":"9badname","password":"goodpass1"}`, "UsernameFirstCharacter"},
		{`{"username":"` + creds["username"].(string) + `","password":"goodpass1"}`, "UsernameReserved"},
		{`{"username":"goodname","password":"1234567"}`, "PasswordLength"},
		{`{"username":"goodname","password":"` + strings.Repeat("p", 65) + `"}`, "PasswordLength"},
		{`{"username":"goodname","password":"it's bad"}`, "PasswordQuote"},
		{`{"username":"goodname","password":"say \"hi\" now"}`, "PasswordQuote"},
	}
	for _, c := range bad {
		var e struct{ Error, Description string }
		if status, _ := b.apiCall(t, "POST", base, c.body, &e); status != 400 || e.Error != c.rule {
			t.Errorf("POST %s: %d %s (%s), want 400 %s", c.body, status, e.Error, e.Description, c.rule)
		}
	}
	if status, _ := b.apiCall(t, "GET", base, "", &list); status != 200 || len(list.Users) != 2 {
		t.Fatalf("bad input changed the users: %+v", list.Users)
	}

	// The bounds that pass: 6 and 32 characters, 8 and 64 characters.
	shortName, longName := "reader", "w"+strings.Repeat("x", 31)
	shortPass, longPass := "8chars!!", strings.Repeat("Z", 64)
	var created apiUser
	if status, body := b.apiCall(t, "POST", base, `{"username":"`+shortName+`","password":"`+shortPass+`","read_only":true}`, &created); status != 201 {
		t.Fatalf("create read-only user: %d %s", status, body)
	}
	if created.Password != "" || !created.ReadOnly {
		t.Errorf("created %+v: a chosen password must not be echoed", created)
	}
	if status, body := b.apiCall(t, "POST", base, `{"username":"`+longName+`","password":"`+longPass+`"}`, nil); status != 201 {
		t.Fatalf("create read-write user: %d %s", status, body)
	}
	if status, _ := b.apiCall(t, "POST", base, `{"username":"`+shortName+`","password":"`+shortPass+`"}`, nil); status != 409 {
		t.Errorf("creating %s twice: %d, want 409", shortName, status)
	}

	// Read-only: reads, and a write is SQLSTATE 42501.
	reader := connect(t, userURL(t, uri, shortName, shortPass))
	if n := count(t, reader, "notes"); n != 1 {
		t.Fatalf("read-only user sees %d notes", n)
	}
	_, err := reader.Exec(ctx, "INSERT INTO notes (body) VALUES ('no')")
	var pgErr *pgconn.PgError
	if !errors.As(err, &pgErr) || pgErr.Code != "42501" {
		t.Fatalf("read-only write: %v, want SQLSTATE 42501", err)
	}
	writer := connect(t, userURL(t, uri, longName, longPass))
	mustExec(t, writer, "INSERT INTO notes (body) VALUES ('from the new user')")

	// A generated password: 64 characters, returned once, and it works.
	var gen apiUser
	if status, body := b.apiCall(t, "POST", base, `{"username":"generated_pw"}`, &gen); status != 201 || len(gen.Password) != 64 {
		t.Fatalf("create with generated password: %d %s", status, body)
	}
	suite.addSecret(gen.Password)
	connect(t, userURL(t, uri, "generated_pw", gen.Password)).Close(ctx)

	// Change a password: the old one stops working, the new one works.
	newPass := "another-Secret-9"
	if status, body := b.apiCall(t, "PUT", base+"/"+shortName+"/password", `{"password":"`+newPass+`"}`, nil); status != 200 {
		t.Fatalf("change password: %d %s", status, body)
	}
	if conn, err := tryConnect(userURL(t, uri, shortName, shortPass)); err == nil {
		conn.Close(ctx)
		t.Fatal("old password still logs in")
	}
	connect(t, userURL(t, uri, shortName, newPass)).Close(ctx)

	// The protected owner and binding users cannot be deleted here.
	var e struct{ Error string }
	if status, _ := b.apiCall(t, "DELETE", base+"/"+owner, "", &e); status != 403 || e.Error != "ProtectedUser" {
		t.Errorf("delete the protected user: %d %s, want 403 ProtectedUser", status, e.Error)
	}
	if status, _ := b.apiCall(t, "DELETE", base+"/"+creds["username"].(string), "", &e); status != 403 || e.Error != "BindingUser" {
		t.Errorf("delete a binding user: %d %s, want 403 BindingUser", status, e.Error)
	}
	if status, _ := b.apiCall(t, "DELETE", base+"/nobody_here", "", &e); status != 404 {
		t.Errorf("delete an unknown user: %d, want 404", status)
	}

	// Delete: the user can no longer log in; what it made stays.
	mustExec(t, writer, "CREATE TABLE made_by_writer (n int)")
	writer.Close(ctx)
	if status, body := b.apiCall(t, "DELETE", base+"/"+longName, "", nil); status != 204 {
		t.Fatalf("delete user: %d %s", status, body)
	}
	if conn, err := tryConnect(userURL(t, uri, longName, longPass)); err == nil {
		conn.Close(ctx)
		t.Fatal("a deleted user logged in")
	}
	if n := count(t, app, "made_by_writer"); n != 0 {
		t.Fatalf("made_by_writer has %d rows", n)
	}
	b.apiCall(t, "GET", base, "", &list)
	for _, u := range list.Users {
		if u.Username == longName {
			t.Fatalf("deleted user still listed")
		}
	}
}
