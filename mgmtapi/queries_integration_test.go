package mgmtapi_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/pgbroker/pgbroker/backends"
	"github.com/pgbroker/pgbroker/catalog"
	"github.com/pgbroker/pgbroker/mgmtapi"
	"github.com/pgbroker/pgbroker/store"
	"github.com/pgbroker/pgbroker/store/storetest"
	"github.com/pgbroker/pgbroker/webauth"
)

// fakeSessions stands for pg_stat_activity of an instance's users.
type fakeSessions struct {
	all     []backends.Backend
	signals []string
}

func (f *fakeSessions) Backends(context.Context, store.Instance) ([]backends.Backend, error) {
	return f.all, nil
}

func (f *fakeSessions) CancelBackend(_ context.Context, _ store.Instance, pid int32, terminate bool) error {
	for _, b := range f.all {
		if b.PID == pid {
			f.signals = append(f.signals, map[bool]string{false: "cancel ", true: "terminate "}[terminate]+b.Username)
			return nil
		}
	}
	return backends.ErrNotFound
}

// as sends the request for caller c.
func as(t *testing.T, h http.Handler, c webauth.Caller, method, path, body string) (int, map[string]any) {
	t.Helper()
	rec := httptest.NewRecorder()
	req := httptest.NewRequest(method, path, strings.NewReader(body))
	h.ServeHTTP(rec, req.WithContext(webauth.WithCaller(req.Context(), c)))
	var out map[string]any
	_ = json.Unmarshal(rec.Body.Bytes(), &out)
	return rec.Code, out
}

// TestRunningQueriesHideIdleSessionsAndOthersTextFromReadOnlyUsers: idle
// sessions appear only with idle=true; a read-only user sees the text of
// its own sessions only; a pid that is no session of the instance's users
// is 404 and signals nothing; bad pid and idle values are 400.
func TestRunningQueriesHideIdleSessionsAndOthersTextFromReadOnlyUsers(t *testing.T) {
	st := storetest.New(t)
	inst := provisioned(t, st, "dddddddddddd")
	start := time.Now().Add(-90 * time.Second)
	db := &fakeSessions{all: []backends.Backend{
		{PID: 101, Username: "owner_user", State: "active", QueryStart: &start, Query: "SELECT pg_sleep(600)"},
		{PID: 102, Username: "owner_user", State: "idle", QueryStart: &start, Query: "ALTER ROLE x PASSWORD 'secret'"},
		{PID: 103, Username: "reader", State: "idle in transaction", TransactionStart: &start, Query: "SELECT 1"},
	}}
	h := mgmtapi.New(mgmtapi.Options{Store: st, Queries: db}).Handler()
	base := "/api/instances/" + inst.ID + "/queries"
	rw := webauth.Caller{Session: &webauth.Session{InstanceID: inst.ID, Username: "owner_user"}}
	ro := webauth.Caller{Session: &webauth.Session{InstanceID: inst.ID, Username: "reader", ReadOnly: true}}

	status, out := as(t, h, rw, "GET", base, "")
	queries := out["queries"].([]any)
	if status != 200 || len(queries) != 2 || out["idle_hidden"].(float64) != 1 {
		t.Fatalf("without idle: %d %v; want the active and the idle-in-transaction session, one hidden", status, out)
	}
	if d := queries[0].(map[string]any)["duration_seconds"].(float64); d < 89 || d > 120 {
		t.Errorf("duration %v s, want about 90", d)
	}
	if _, out = as(t, h, rw, "GET", base+"?idle=true", ""); len(out["queries"].([]any)) != 3 {
		t.Fatalf("idle=true: %v, want the three sessions", out)
	}
	_, out = as(t, h, ro, "GET", base+"?idle=true", "")
	for _, q := range out["queries"].([]any) {
		q := q.(map[string]any)
		own := q["username"] == "reader"
		if own != (q["query"] != "") || own == (q["query_hidden"] == true) {
			t.Errorf("read-only user sees %v: want the text of its own sessions only", q)
		}
	}
	for _, c := range []struct {
		path string
		want int
	}{{base + "?idle=yes", 400}, {base + "/0/cancel", 400}, {base + "/abc/terminate", 400}, {base + "/999/cancel", 404}} {
		method := "POST"
		if strings.Contains(c.path, "?") {
			method = "GET"
		}
		if status, out := as(t, h, rw, method, c.path, ""); status != c.want {
			t.Errorf("%s %s: %d %v, want %d", method, c.path, status, out, c.want)
		}
	}
	if status, out := as(t, h, rw, "POST", base+"/101/cancel", ""); status != 200 || out["pid"].(float64) != 101 {
		t.Fatalf("cancel 101: %d %v", status, out)
	}
	if status, _ := as(t, h, rw, "POST", base+"/103/terminate", ""); status != 200 {
		t.Fatalf("terminate 103: %d", status)
	}
	if strings.Join(db.signals, ",") != "cancel owner_user,terminate reader" {
		t.Errorf("signals sent: %v", db.signals)
	}
}

// TestForceTLSSettingStartsOneUpdateOperationOrNone: PUT settings with a
// new force_tls records an update operation carrying it (202); the value
// the instance has is 200 without one; a missing or mistyped force_tls is
// 400 and records nothing; the summary shows the operation.
func TestForceTLSSettingStartsOneUpdateOperationOrNone(t *testing.T) {
	st := storetest.New(t)
	inst := provisioned(t, st, "eeeeeeeeeeee")
	cat, err := catalog.Default()
	if err != nil {
		t.Fatal(err)
	}
	h := mgmtapi.New(mgmtapi.Options{Store: st, Catalog: cat, EnqueueOp: noEnqueue}).Handler()
	path := "/api/instances/" + inst.ID + "/settings"
	op := func() store.Operation {
		o, err := st.Instances().LatestOperation(context.Background(), inst.ID)
		if err != nil {
			t.Fatal(err)
		}
		return o
	}
	before := op()
	for _, body := range []string{`{}`, `{"force_tls":"yes"}`, `{"force_tls":true,"plan":"x"}`, `{"force_tls":false}`} {
		status, out := as(t, h, webauth.Caller{Operator: true}, "PUT", path, body)
		want := map[bool]int{true: 200, false: 400}[body == `{"force_tls":false}`]
		if status != want || op().ID != before.ID {
			t.Errorf("%s: %d %v, want %d and no operation", body, status, out, want)
		}
	}
	status, out := as(t, h, webauth.Caller{Operator: true}, "PUT", path, `{"force_tls":true}`)
	after := op()
	var params struct {
		ForceTLS *bool `json:"force_tls"`
	}
	_ = json.Unmarshal(after.Parameters, &params)
	if status != 202 || after.ID != out["operation"] || after.Kind != store.KindUpdate || params.ForceTLS == nil || !*params.ForceTLS {
		t.Fatalf("force_tls true: %d %v; operation %+v", status, out, after)
	}
	status, out = as(t, h, webauth.Caller{Operator: true}, "GET", "/api/instances/"+inst.ID, "")
	last, _ := out["last_operation"].(map[string]any)
	if status != 200 || out["plan_id"] != inst.PlanID || last["kind"] != string(store.KindUpdate) || last["state"] != "in progress" {
		t.Errorf("summary: %d %v", status, out)
	}
}
