package mgmtapi_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/pgbroker/pgbroker/backup"
	"github.com/pgbroker/pgbroker/extensions"
	"github.com/pgbroker/pgbroker/mgmtapi"
	"github.com/pgbroker/pgbroker/store"
	"github.com/pgbroker/pgbroker/store/storetest"
	"github.com/pgbroker/pgbroker/users"
)

// The routes against a real state database (storetest) and fakes of the
// instance's database (Users, Extensions): what the API decides itself,
// without Nomad or an instance.

func noEnqueue(context.Context, pgx.Tx, string) error { return nil }

// provisioned records a provisioned instance with short id short.
func provisioned(t *testing.T, st *store.Store, short string) store.Instance {
	t.Helper()
	ctx := context.Background()
	in := store.Instance{ID: uuid.NewString(), ShortID: short, ServiceID: "postgresql", PlanID: "postgresql-starter-512",
		OrganizationGUID: "o", SpaceGUID: "s"}
	op := store.Operation{ID: uuid.NewString(), Kind: store.KindProvision, PlanID: in.PlanID, Description: "queued"}
	in, err := st.Instances().CreateInstance(ctx, in, op, store.PortRange{Min: 40000, Max: 40100}, noEnqueue)
	if err != nil {
		t.Fatal(err)
	}
	if err := st.Instances().FinishOperation(ctx, op.ID, store.Succeeded, "done"); err != nil {
		t.Fatal(err)
	}
	return in
}

// call sends method path body to h and returns the status and the decoded
// {"error", "description"} (or the raw body in description).
func call(t *testing.T, h http.Handler, method, path, body string) (int, string, string, *httptest.ResponseRecorder) {
	t.Helper()
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(method, path, strings.NewReader(body)))
	var e struct{ Error, Description string }
	_ = json.Unmarshal(rec.Body.Bytes(), &e)
	return rec.Code, e.Error, e.Description, rec
}

// TestDownloadServesASucceededDumpAndSaysGoneOnceItLeftTheStorage: a
// succeeded dump downloads byte for byte with its SHA-256; a pending one is
// 409, another instance's 404, and once the file left the storage 410.
func TestDownloadServesASucceededDumpAndSaysGoneOnceItLeftTheStorage(t *testing.T) {
	st := storetest.New(t)
	ctx := context.Background()
	mine, theirs := provisioned(t, st, "aaaaaaaaaaaa"), provisioned(t, st, "bbbbbbbbbbbb")
	dir := t.TempDir()
	fsys, err := backup.NewFilesystem(dir)
	if err != nil {
		t.Fatal(err)
	}
	content := []byte("PGDMP custom-format dump")
	key := mine.ShortID + "/done.dump"
	if err := os.MkdirAll(filepath.Join(dir, mine.ShortID), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, key), content, 0o600); err != nil {
		t.Fatal(err)
	}
	done, pending := uuid.NewString(), uuid.NewString()
	for id, k := range map[string]string{done: key, pending: mine.ShortID + "/pending.dump"} {
		if _, err := st.Backups().CreateBackup(ctx, store.Backup{ID: id, InstanceID: mine.ID, Kind: store.BackupManual, StorageKey: k}, noEnqueue); err != nil {
			t.Fatal(err)
		}
	}
	if err := st.Backups().SucceedBackup(ctx, done, int64(len(content)), "sha-of-the-dump"); err != nil {
		t.Fatal(err)
	}
	h := mgmtapi.New(mgmtapi.Options{Store: st, Dumps: fsys}).Handler()
	path := func(inst, backup string) string { return "/api/instances/" + inst + "/backups/" + backup + "/download" }

	status, _, _, rec := call(t, h, "GET", path(mine.ID, done), "")
	if status != http.StatusOK || rec.Body.String() != string(content) || rec.Header().Get("X-Checksum-Sha256") != "sha-of-the-dump" {
		t.Fatalf("download: %d %q %v", status, rec.Body.String(), rec.Header())
	}
	for _, c := range []struct {
		name, path string
		status     int
		rule       string
	}{
		{"pending", path(mine.ID, pending), 409, "BackupNotReady"},
		{"another instance's", path(theirs.ID, done), 404, "BackupNotFound"},
		{"unknown instance", path(uuid.NewString(), done), 404, "InstanceNotFound"},
	} {
		if status, rule, msg, _ := call(t, h, "GET", c.path, ""); status != c.status || rule != c.rule {
			t.Errorf("%s: %d %s (%s), want %d %s", c.name, status, rule, msg, c.status, c.rule)
		}
	}
	if err := os.Remove(filepath.Join(dir, key)); err != nil {
		t.Fatal(err)
	}
	if status, rule, msg, _ := call(t, h, "GET", path(mine.ID, done), ""); status != http.StatusGone || rule != "Gone" || !strings.Contains(msg, done) {
		t.Errorf("dump gone from the storage: %d %s (%s), want 410 Gone naming the backup", status, rule, msg)
	}
}

// fakeDatabase stands for an instance's database: its users and extensions.
type fakeDatabase struct {
	users     map[string]users.User
	passwords map[string]string
	installed []string
	inUse     string // DisableExtensions refuses this one
	calls     []string
}

func (f *fakeDatabase) Users(context.Context, store.Instance) ([]users.User, error) {
	var out []users.User
	for _, u := range f.users {
		out = append(out, u)
	}
	return out, nil
}

func (f *fakeDatabase) User(_ context.Context, _ store.Instance, name string) (users.User, error) {
	u, ok := f.users[name]
	if !ok {
		return u, users.ErrUserNotFound
	}
	return u, nil
}

func (f *fakeDatabase) CreateUser(_ context.Context, _ store.Instance, name, password string, readOnly bool) error {
	f.calls = append(f.calls, "create "+name)
	if _, ok := f.users[name]; ok {
		return users.ErrUserExists
	}
	f.users[name], f.passwords[name] = users.User{Username: name, ReadOnly: readOnly, CanLogin: true}, password
	return nil
}

func (f *fakeDatabase) SetUserPassword(_ context.Context, _ store.Instance, name, password string) error {
	f.calls = append(f.calls, "password "+name)
	f.passwords[name] = password
	return nil
}

func (f *fakeDatabase) DeleteUser(_ context.Context, _ store.Instance, name string) error {
	f.calls = append(f.calls, "delete "+name)
	delete(f.users, name)
	return nil
}

func (f *fakeDatabase) Extensions(context.Context, store.Instance) ([]extensions.InstalledExtension, error) {
	var out []extensions.InstalledExtension
	for _, n := range f.installed {
		out = append(out, extensions.InstalledExtension{Name: n, Version: "1.0"})
	}
	return out, nil
}

func (f *fakeDatabase) EnableExtensions(_ context.Context, _ store.Instance, names []string) error {
	f.calls = append(f.calls, "enable "+strings.Join(names, ","))
	f.installed = append(f.installed, names...)
	return nil
}

func (f *fakeDatabase) DisableExtensions(_ context.Context, _ store.Instance, names []string) error {
	f.calls = append(f.calls, "disable "+strings.Join(names, ","))
	if slices.Contains(names, f.inUse) {
		return fmt.Errorf("drop extension %s: %w: table t depends on it", f.inUse, extensions.ErrExtensionInUse)
	}
	return nil
}

// TestUserRoutesKeepTheOwnerAndBindingsAndGenerateOnePassword: a user made
// without a password gets a generated one, shown once and handed to the
// database; the name taken is 409; the owner and a binding's user are never
// deleted (403) and the database is not asked; an operation in progress
// blocks every change (409).
func TestUserRoutesKeepTheOwnerAndBindingsAndGenerateOnePassword(t *testing.T) {
	st := storetest.New(t)
	inst := provisioned(t, st, "cccccccccccc")
	db := &fakeDatabase{passwords: map[string]string{}, users: map[string]users.User{
		"db_cccccccccccc": {Username: "db_cccccccccccc", Protected: true, CanLogin: true},
		"u_0123456789ab":  {Username: "u_0123456789ab", Binding: true, CanLogin: true},
	}}
	h := mgmtapi.New(mgmtapi.Options{Store: st, Users: db, Extensions: db, EnqueueOp: noEnqueue}).Handler()
	base := "/api/instances/" + inst.ID + "/users"

	status, _, _, rec := call(t, h, "POST", base, `{"username":"myuser"}`)
	var made struct{ Username, Password string }
	_ = json.Unmarshal(rec.Body.Bytes(), &made)
	if status != http.StatusCreated || len(made.Password) != users.PasswordMaxLength || db.passwords["myuser"] != made.Password {
		t.Fatalf("create without a password: %d %s; the database got %q", status, rec.Body.String(), db.passwords["myuser"])
	}
	if status, rule, _, _ := call(t, h, "POST", base, `{"username":"myuser","password":"password1"}`); status != 409 || rule != "UserExists" {
		t.Errorf("create twice: %d %s, want 409 UserExists", status, rule)
	}
	before := len(db.calls)
	for _, c := range []struct {
		method, path string
		status       int
		rule         string
	}{
		{"DELETE", base + "/db_cccccccccccc", 403, "ProtectedUser"},
		{"DELETE", base + "/u_0123456789ab", 403, "BindingUser"},
		{"PUT", base + "/u_0123456789ab/password", 403, "BindingUser"},
		{"DELETE", base + "/nobody_here", 404, "UserNotFound"},
	} {
		if status, rule, msg, _ := call(t, h, c.method, c.path, ""); status != c.status || rule != c.rule {
			t.Errorf("%s %s: %d %s (%s), want %d %s", c.method, c.path, status, rule, msg, c.status, c.rule)
		}
	}
	if len(db.calls) != before {
		t.Errorf("refused requests reached the database: %v", db.calls[before:])
	}
	op := store.Operation{ID: uuid.NewString(), InstanceID: inst.ID, Kind: store.KindUpdate, PlanID: inst.PlanID, Description: "queued"}
	if err := st.Instances().StartOperation(context.Background(), op, noEnqueue); err != nil {
		t.Fatal(err)
	}
	if status, rule, _, _ := call(t, h, "DELETE", base+"/myuser", ""); status != 409 || rule != "OperationInProgress" || db.users["myuser"].Username == "" {
		t.Errorf("delete during an operation: %d %s, want 409 OperationInProgress and the user kept", status, rule)
	}
}

// TestExtensionRoutesRestartOnlyThroughAnOperation: an extension without a
// preload library is created at once and recorded; pg_stat_statements
// becomes an update operation carrying the new list, the database is not
// touched; an extension in use is 409 and stays recorded.
func TestExtensionRoutesRestartOnlyThroughAnOperation(t *testing.T) {
	st := storetest.New(t)
	ctx := context.Background()
	inst := provisioned(t, st, "dddddddddddd")
	db := &fakeDatabase{inUse: "hstore"}
	h := mgmtapi.New(mgmtapi.Options{Store: st, Users: db, Extensions: db, EnqueueOp: noEnqueue}).Handler()
	base := "/api/instances/" + inst.ID + "/extensions/"

	if status, _, _, rec := call(t, h, "PUT", base+"hstore", ""); status != http.StatusOK || !strings.Contains(rec.Body.String(), `"enabled":true`) {
		t.Fatalf("enable hstore: %d %s", status, rec.Body.String())
	}
	if got, _ := st.Instances().GetInstance(ctx, inst.ID); !slices.Equal(got.Extensions, []string{"hstore"}) {
		t.Errorf("recorded extensions %v, want [hstore]", got.Extensions)
	}
	if status, rule, _, _ := call(t, h, "DELETE", base+"hstore", ""); status != 409 || rule != "ExtensionInUse" {
		t.Errorf("disable hstore in use: %d %s, want 409 ExtensionInUse", status, rule)
	}
	if got, _ := st.Instances().GetInstance(ctx, inst.ID); !slices.Equal(got.Extensions, []string{"hstore"}) {
		t.Errorf("after a refused disable, recorded extensions %v, want [hstore]", got.Extensions)
	}
	calls := len(db.calls)
	status, _, _, rec := call(t, h, "PUT", base+"pg_stat_statements", "")
	var answer struct{ Operation string }
	_ = json.Unmarshal(rec.Body.Bytes(), &answer)
	if status != http.StatusAccepted || answer.Operation == "" {
		t.Fatalf("enable pg_stat_statements: %d %s, want 202 with an operation", status, rec.Body.String())
	}
	op, err := st.Instances().GetOperation(ctx, answer.Operation)
	var params struct{ Extensions []string }
	_ = json.Unmarshal(op.Parameters, &params)
	if err != nil || op.Kind != store.KindUpdate || op.State != store.InProgress || !slices.Equal(params.Extensions, []string{"hstore", "pg_stat_statements"}) {
		t.Errorf("operation %s %s with parameters %s (%v), want an update in progress with both extensions", op.Kind, op.State, op.Parameters, err)
	}
	if len(db.calls) != calls {
		t.Errorf("a restarting change reached the database directly: %v", db.calls[calls:])
	}
}
