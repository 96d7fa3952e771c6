package acceptance

import (
	"context"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/hashicorp/nomad/api"
	"github.com/jackc/pgx/v5"

	"github.com/pgbroker/pgbroker/naming"
)

const provisionBody = `{"service_id":"postgresql","plan_id":"postgresql-sandbox","organization_guid":"org","space_guid":"space"}`

// TestBadInputChangesNothing: each malformed or refused request gets its
// status code and a description, and leaves everything as it was: every row
// of the state database in full, the Nomad jobs and Variables of the
// instance it names, and etcd (stateSnapshot). Some requests name a new
// instance, others an instance that exists. The last subtest plants a change
// in each kind of state and checks that the snapshot sees it, so the
// comparison can fail.
func TestBadInputChangesNothing(t *testing.T) {
	// Without etcd, Business plans are refused: one of the cases.
	b := newBroker(t, "PGBROKER_ETCD_ENDPOINTS=")
	existing := uuid.NewString()
	provision(t, b.client(), existing, "postgresql-sandbox")
	t.Cleanup(func() { deprovision(t, b.client(), existing, "postgresql-sandbox") })
	waitJobsSettled(t, b)
	const newInstance = ""
	cases := []struct {
		name, instance, method, path, body string
		header                             map[string]string
		status                             int
		says                               string
	}{
		{"unknown plan", newInstance, "PUT", "/v2/service_instances/%s?accepts_incomplete=true",
			`{"service_id":"postgresql","plan_id":"postgresql-huge","organization_guid":"o","space_guid":"s"}`, nil, 400, "plan-id not in the catalog"},
		{"unknown parameter", newInstance, "PUT", "/v2/service_instances/%s?accepts_incomplete=true",
			`{"service_id":"postgresql","plan_id":"postgresql-sandbox","organization_guid":"o","space_guid":"s","parameters":{"shoe_size":42}}`, nil, 400, "shoe_size"},
		{"malformed JSON", newInstance, "PUT", "/v2/service_instances/%s?accepts_incomplete=true", `{"service_id": "postgresql",`, nil, 400, "JSON"},
		{"body not an object", newInstance, "PUT", "/v2/service_instances/%s?accepts_incomplete=true", `[1,2]`, nil, 400, "object"},
		{"no accepts_incomplete", newInstance, "PUT", "/v2/service_instances/%s", provisionBody, nil, 422, "AsyncRequired"},
		{"wrong credentials", newInstance, "PUT", "/v2/service_instances/%s?accepts_incomplete=true", provisionBody,
			map[string]string{"Authorization": "Basic d3Jvbmc6d3Jvbmc="}, 401, "credentials"},
		{"no API version", newInstance, "PUT", "/v2/service_instances/%s?accepts_incomplete=true", provisionBody,
			map[string]string{"X-Broker-API-Version": ""}, 412, "X-Broker-API-Version"},
		{"missing organization", newInstance, "PUT", "/v2/service_instances/%s?accepts_incomplete=true",
			`{"service_id":"postgresql","plan_id":"postgresql-sandbox","space_guid":"s"}`, nil, 400, "organization_guid"},
		{"business plan without etcd", newInstance, "PUT", "/v2/service_instances/%s?accepts_incomplete=true",
			`{"service_id":"postgresql","plan_id":"postgresql-business-512","organization_guid":"o","space_guid":"s"}`, nil, 422, "PGBROKER_ETCD_ENDPOINTS"},
		{"update with an unknown parameter", existing, "PATCH", "/v2/service_instances/%s?accepts_incomplete=true",
			`{"service_id":"postgresql","parameters":{"shoe_size":42}}`, nil, 400, "shoe_size"},
		{"update to a business plan without etcd", existing, "PATCH", "/v2/service_instances/%s?accepts_incomplete=true",
			`{"service_id":"postgresql","plan_id":"postgresql-business-512"}`, nil, 422, "PGBROKER_ETCD_ENDPOINTS"},
		{"bind with a read_only that is not a boolean", existing, "PUT", "/v2/service_instances/%s/service_bindings/" + uuid.NewString(),
			`{"service_id":"postgresql","plan_id":"postgresql-sandbox","parameters":{"read_only":"yes"}}`, nil, 400, "read_only"},
		{"provision again with another plan", existing, "PUT", "/v2/service_instances/%s?accepts_incomplete=true",
			`{"service_id":"postgresql","plan_id":"postgresql-starter-512","organization_guid":"o","space_guid":"s"}`, nil, 409, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			id := tc.instance
			if id == newInstance {
				id = uuid.NewString()
			}
			shorts := []string{naming.ShortID(existing), naming.ShortID(id)}
			before := stateSnapshot(t, b, shorts...)
			status, body := b.raw(tc.method, strings.Replace(tc.path, "%s", id, 1), tc.body, tc.header)
			if status != tc.status {
				t.Fatalf("status %d, want %d; body %s", status, tc.status, body)
			}
			if !strings.Contains(body, tc.says) {
				t.Fatalf("body %s does not say %q", body, tc.says)
			}
			if after := stateSnapshot(t, b, shorts...); after != before {
				t.Fatalf("state changed:\n%s", diffLines(before, after))
			}
		})
	}
	t.Run("a planted change is seen", func(t *testing.T) { assertSnapshotSeesChanges(t, b, existing) })
}

// assertSnapshotSeesChanges plants a change of each kind stateSnapshot
// covers (a row's content, a Nomad Variable, an etcd key), checks that the
// snapshot differs, and takes the change back.
func assertSnapshotSeesChanges(t *testing.T, b *broker, instanceID string) {
	t.Helper()
	ctx := context.Background()
	short := naming.ShortID(instanceID)
	conn, err := pgx.Connect(ctx, b.stateDB)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	plants := []struct {
		name          string
		plant, remove func() error
	}{
		{"one field of one row", func() error {
			_, err := conn.Exec(ctx, `UPDATE instances SET parameters = parameters || '{"planted": 1}' WHERE id = $1`, instanceID)
			return err
		}, func() error {
			_, err := conn.Exec(ctx, `UPDATE instances SET parameters = parameters - 'planted' WHERE id = $1`, instanceID)
			return err
		}},
		{"a Nomad Variable", func() error {
			_, _, err := nomadClient(t).Variables().Create(&api.Variable{Path: "pgbroker/instances/" + short + "/bindings/planted",
				Items: api.VariableItems{"password": "planted-not-a-secret"}}, nil)
			return err
		}, func() error {
			_, err := nomadClient(t).Variables().Delete("pgbroker/instances/"+short+"/bindings/planted", nil)
			return err
		}},
		{"an etcd key", func() error {
			return etcdPut("/pgbroker/planted-"+short, "x")
		}, func() error {
			_, err := etcdDeletePrefix("/pgbroker/planted-" + short)
			return err
		}},
	}
	for _, p := range plants {
		before := stateSnapshot(t, b, short)
		if err := p.plant(); err != nil {
			t.Fatalf("plant %s: %v", p.name, err)
		}
		after := stateSnapshot(t, b, short)
		if err := p.remove(); err != nil {
			t.Fatalf("take back %s: %v", p.name, err)
		}
		if after == before {
			t.Errorf("the snapshot does not see %s change", p.name)
		}
		if again := stateSnapshot(t, b, short); again != before {
			t.Errorf("taking back %s left:\n%s", p.name, diffLines(before, again))
		}
	}
}

// TestProvisionSameIDAgain: identical while in progress 202 with the same
// operation, identical after success 200, other plan 409.
func TestProvisionSameIDAgain(t *testing.T) {
	b := newBroker(t)
	id := uuid.NewString()
	path := "/v2/service_instances/" + id + "?accepts_incomplete=true"
	status, first := b.raw("PUT", path, provisionBody, nil)
	if status != http.StatusAccepted {
		t.Fatalf("first provision %d %s", status, first)
	}
	status, second := b.raw("PUT", path, provisionBody, nil)
	if status != http.StatusAccepted || second != first {
		t.Fatalf("identical provision while in progress: %d %s, want 202 %s", status, second, first)
	}
	other := strings.Replace(provisionBody, "postgresql-sandbox", "postgresql-starter-512", 1)
	before := stateRows(t, b)
	if status, body := b.raw("PUT", path, other, nil); status != http.StatusConflict {
		t.Fatalf("same id, other plan: %d %s, want 409", status, body)
	}
	if after := stateRows(t, b); after != before {
		t.Fatal("409 changed state")
	}
	c := b.client()
	waitOperation(t, c, id, nil, 3*time.Minute)
	if status, body := b.raw("PUT", path, provisionBody, nil); status != http.StatusOK {
		t.Fatalf("identical provision after success: %d %s, want 200", status, body)
	}
	if n := nodeJobsNamed(t, id); n != 1 {
		t.Fatalf("%d node jobs, want 1", n)
	}
	deprovision(t, c, id, "postgresql-sandbox")
	if status, _ := b.raw("DELETE", "/v2/service_instances/"+id+"?accepts_incomplete=true&service_id=postgresql&plan_id=postgresql-sandbox", "", nil); status != http.StatusGone {
		t.Fatalf("deprovision twice: %d, want 410", status)
	}
}

// TestPlanShrinkRefusedWhenDataDoesNotFit: with a catalog whose Sandbox has a
// 16 MiB disk, moving a Starter instance (about 30 MiB of system databases)
// to it is refused with 422 naming both sizes, and nothing changes.
func TestPlanShrinkRefusedWhenDataDoesNotFit(t *testing.T) {
	src, err := os.ReadFile("../catalog/catalog.yaml")
	if err != nil {
		t.Fatal(err)
	}
	small := strings.Replace(string(src), "disk_mib: 1024\n", "disk_mib: 16\n", 1)
	if small == string(src) {
		t.Fatal("could not shrink the sandbox disk in the test catalog")
	}
	file := filepath.Join(t.TempDir(), "catalog.yaml")
	if err := os.WriteFile(file, []byte(small), 0o644); err != nil {
		t.Fatal(err)
	}
	b := newBroker(t, "PGBROKER_CATALOG_FILE="+file)
	c := b.client()
	id := uuid.NewString()
	provision(t, c, id, "postgresql-starter-512")
	before := stateRows(t, b)
	status, body := b.raw("PATCH", "/v2/service_instances/"+id+"?accepts_incomplete=true",
		`{"service_id":"postgresql","plan_id":"postgresql-sandbox"}`, nil)
	if status != http.StatusUnprocessableEntity || !strings.Contains(body, "MiB of data") || !strings.Contains(body, "allows 16.0 MiB") {
		t.Fatalf("shrink: %d %s, want 422 naming used and allowed sizes", status, body)
	}
	if after := stateRows(t, b); after != before {
		t.Fatal("refused update changed state")
	}
	if mem := nodeMemoryMiB(t, id); mem != 512 {
		t.Fatalf("node memory %d after refused update", mem)
	}
	deprovision(t, c, id, "postgresql-starter-512")
}

// stateRows counts the broker's rows (instances, operations, bindings, jobs).
func stateRows(t *testing.T, b *broker) int {
	t.Helper()
	conn, err := pgx.Connect(context.Background(), b.stateDB)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	var n int
	err = conn.QueryRow(context.Background(), `SELECT (SELECT count(*) FROM instances) + (SELECT count(*) FROM operations)
		+ (SELECT count(*) FROM bindings) + (SELECT count(*) FROM river_job WHERE kind = 'operation')`).Scan(&n)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// TestBindWithCurlStyleFormContentTypeWorks: `curl -d` labels a JSON body
// application/x-www-form-urlencoded; the body is still read as JSON.
func TestBindWithCurlStyleFormContentTypeWorks(t *testing.T) {
	b := newBroker(t)
	id := uuid.NewString()
	form := map[string]string{"Content-Type": "application/x-www-form-urlencoded"}
	if status, body := b.raw("PUT", "/v2/service_instances/"+id+"?accepts_incomplete=true", provisionBody, form); status != http.StatusAccepted {
		t.Fatalf("provision: %d %s", status, body)
	}
	waitOperation(t, b.client(), id, nil, 3*time.Minute)
	status, body := b.raw("PUT", "/v2/service_instances/"+id+"/service_bindings/"+uuid.NewString(),
		`{"service_id":"postgresql","plan_id":"postgresql-sandbox"}`, form)
	if status != http.StatusCreated || !strings.Contains(body, "DATABASE_URL") {
		t.Fatalf("bind: %d %s", status, body)
	}
	deprovision(t, b.client(), id, "postgresql-sandbox")
}
