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
	"github.com/jackc/pgx/v5"
)

const provisionBody = `{"service_id":"postgresql","plan_id":"postgresql-sandbox","organization_guid":"org","space_guid":"space"}`

// TestBadInputChangesNothing: each malformed or refused request gets its
// status code and a description, and leaves the state database unchanged.
func TestBadInputChangesNothing(t *testing.T) {
	// Without etcd, Business plans are refused: one of the cases.
	b := newBroker(t, "PGBROKER_ETCD_ENDPOINTS=")
	cases := []struct {
		name, method, path, body string
		header                   map[string]string
		status                   int
		says                     string
	}{
		{"unknown plan", "PUT", "/v2/service_instances/%s?accepts_incomplete=true",
			`{"service_id":"postgresql","plan_id":"postgresql-huge","organization_guid":"o","space_guid":"s"}`, nil, 400, "plan-id not in the catalog"},
		{"unknown parameter", "PUT", "/v2/service_instances/%s?accepts_incomplete=true",
			`{"service_id":"postgresql","plan_id":"postgresql-sandbox","organization_guid":"o","space_guid":"s","parameters":{"shoe_size":42}}`, nil, 400, "shoe_size"},
		{"malformed JSON", "PUT", "/v2/service_instances/%s?accepts_incomplete=true", `{"service_id": "postgresql",`, nil, 400, "JSON"},
		{"body not an object", "PUT", "/v2/service_instances/%s?accepts_incomplete=true", `[1,2]`, nil, 400, "object"},
		{"no accepts_incomplete", "PUT", "/v2/service_instances/%s", provisionBody, nil, 422, "AsyncRequired"},
		{"wrong credentials", "PUT", "/v2/service_instances/%s?accepts_incomplete=true", provisionBody,
			map[string]string{"Authorization": "Basic d3Jvbmc6d3Jvbmc="}, 401, "credentials"},
		{"no API version", "PUT", "/v2/service_instances/%s?accepts_incomplete=true", provisionBody,
			map[string]string{"X-Broker-API-Version": ""}, 412, "X-Broker-API-Version"},
		{"missing organization", "PUT", "/v2/service_instances/%s?accepts_incomplete=true",
			`{"service_id":"postgresql","plan_id":"postgresql-sandbox","space_guid":"s"}`, nil, 400, "organization_guid"},
		{"business plan without etcd", "PUT", "/v2/service_instances/%s?accepts_incomplete=true",
			`{"service_id":"postgresql","plan_id":"postgresql-business-512","organization_guid":"o","space_guid":"s"}`, nil, 422, "PGBROKER_ETCD_ENDPOINTS"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			before := stateRows(t, b)
			path := strings.Replace(tc.path, "%s", uuid.NewString(), 1)
			status, body := b.raw(tc.method, path, tc.body, tc.header)
			if status != tc.status {
				t.Fatalf("status %d, want %d; body %s", status, tc.status, body)
			}
			if !strings.Contains(body, tc.says) {
				t.Fatalf("body %s does not say %q", body, tc.says)
			}
			if after := stateRows(t, b); after != before {
				t.Fatalf("state changed: %d rows before, %d after", before, after)
			}
		})
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
