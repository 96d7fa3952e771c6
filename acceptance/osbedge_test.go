package acceptance

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/hashicorp/nomad/api"
	osb "sigs.k8s.io/go-open-service-broker-client/v2"

	"github.com/pgbroker/pgbroker/naming"
)

const bogusID = "xxxx-xxxx-xxxx-xxxx"

// TestUnknownServiceOrPlanIDIsRefusedAndChangesNothing: bind, unbind,
// update and deprovision with a service_id or plan_id that is not in the
// catalog answer 400 naming the field, and change nothing: no row in the
// state database, no login role on the instance, no Nomad job touched.
func TestUnknownServiceOrPlanIDIsRefusedAndChangesNothing(t *testing.T) {
	b := newBroker(t)
	c := b.client()
	id := uuid.NewString()
	provision(t, c, id, "postgresql-sandbox")
	creds := bind(t, c, id, "b-ok", "postgresql-sandbox", nil)
	conn := connect(t, creds["uri"].(string))
	nomad, err := sharedNomad()
	if err != nil {
		t.Fatalf("Nomad client: %v", err)
	}
	jobIndex := func() string {
		var idx []string
		for _, job := range []string{naming.NodesJobID(naming.ShortID(id)), naming.GatewaysJobID(naming.ShortID(id))} {
			j, _, err := nomad.Jobs().Info(job, &api.QueryOptions{})
			if err != nil {
				t.Fatalf("read job %s: %v", job, err)
			}
			idx = append(idx, fmt.Sprintf("%s@%d/%s", job, *j.JobModifyIndex, *j.Status))
		}
		return strings.Join(idx, " ")
	}
	roleExists := func(bindingID string) bool {
		var n int
		err := conn.QueryRow(context.Background(), "SELECT count(*) FROM pg_roles WHERE rolname = $1", naming.BindingRole(bindingID)).Scan(&n)
		if err != nil {
			t.Fatalf("read pg_roles: %v", err)
		}
		return n == 1
	}
	if !roleExists("b-ok") {
		t.Fatal("test bug: the binding's own role is not in pg_roles")
	}
	instance := "/v2/service_instances/" + id
	cases := []struct {
		name, method, path, body, field string
	}{
		{"bind, unknown service_id", "PUT", instance + "/service_bindings/b-bad",
			`{"service_id":"` + bogusID + `","plan_id":"postgresql-sandbox"}`, "service_id"},
		{"bind, unknown plan_id", "PUT", instance + "/service_bindings/b-bad",
			`{"service_id":"postgresql","plan_id":"` + bogusID + `"}`, "plan_id"},
		{"unbind, unknown service_id", "DELETE", instance + "/service_bindings/b-ok?service_id=" + bogusID + "&plan_id=postgresql-sandbox", "", "service_id"},
		{"unbind, unknown plan_id", "DELETE", instance + "/service_bindings/b-ok?service_id=postgresql&plan_id=" + bogusID, "", "plan_id"},
		{"update, unknown plan_id", "PATCH", instance + "?accepts_incomplete=true",
			`{"service_id":"postgresql","plan_id":"` + bogusID + `"}`, "plan_id"},
		{"update, unknown service_id", "PATCH", instance + "?accepts_incomplete=true",
			`{"service_id":"` + bogusID + `","plan_id":"postgresql-starter-512"}`, "service_id"},
		{"deprovision, unknown service_id", "DELETE", instance + "?accepts_incomplete=true&service_id=" + bogusID + "&plan_id=postgresql-sandbox", "", "service_id"},
		{"deprovision, unknown plan_id", "DELETE", instance + "?accepts_incomplete=true&service_id=postgresql&plan_id=" + bogusID, "", "plan_id"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			rows, jobs := stateRows(t, b), jobIndex()
			status, body := b.raw(tc.method, tc.path, tc.body, nil)
			if status != http.StatusBadRequest || !strings.Contains(body, tc.field) || !strings.Contains(body, bogusID) {
				t.Fatalf("status %d %s, want 400 naming %s and %s", status, body, tc.field, bogusID)
			}
			if after := stateRows(t, b); after != rows {
				t.Errorf("state database: %d rows before, %d after", rows, after)
			}
			if after := jobIndex(); after != jobs {
				t.Errorf("Nomad jobs changed: %s, then %s", jobs, after)
			}
			if roleExists("b-bad") {
				t.Error("a refused bind created its login role")
			}
			if !roleExists("b-ok") {
				t.Error("a refused unbind dropped the binding's role")
			}
		})
	}
	if err := conn.Ping(context.Background()); err != nil {
		t.Fatalf("the binding's connection after the refused requests: %v", err)
	}
}

// TestLastOperationWithAForeignOperationAnswersForTheLatest: some clients
// send the operation's kind ("provision", "update") as the operation value;
// last_operation answers 200 for the instance's latest operation, not 400.
// Also checked on the same broker: the dashboard_url of provision and GET
// instance answers the placeholder page without credentials, and every plan
// announces maximum_polling_duration = deadline + rescue + retry delay.
func TestLastOperationWithAForeignOperationAnswersForTheLatest(t *testing.T) {
	b := newBroker(t, "PGBROKER_OPERATION_DEADLINE=20m", "PGBROKER_RESCUE_AFTER=7m", "PGBROKER_MAX_RETRY_DELAY=15s",
		"PGBROKER_EXTERNAL_URL=http://dashboard.invalid/pg/")
	c := b.client()
	id := uuid.NewString()
	status, body := b.raw("PUT", "/v2/service_instances/"+id+"?accepts_incomplete=true",
		`{"service_id":"postgresql","plan_id":"postgresql-sandbox","organization_guid":"org","space_guid":"space"}`, nil)
	var provisioned struct {
		Operation    string `json:"operation"`
		DashboardURL string `json:"dashboard_url"`
	}
	if status != http.StatusAccepted || json.Unmarshal([]byte(body), &provisioned) != nil {
		t.Fatalf("provision: %d %s", status, body)
	}
	wantURL := "http://dashboard.invalid/pg/dashboard/instances/" + id
	if provisioned.DashboardURL != wantURL {
		t.Errorf("provision dashboard_url %q, want %q", provisioned.DashboardURL, wantURL)
	}
	key := osb.OperationKey(provisioned.Operation)
	waitOperation(t, c, id, &key, 3*time.Minute)

	poll := func(operation string) string {
		t.Helper()
		status, body := b.raw("GET", "/v2/service_instances/"+id+"/last_operation?operation="+operation, "", nil)
		if status != http.StatusOK {
			t.Fatalf("last_operation?operation=%s: %d %s, want 200", operation, status, body)
		}
		return body
	}
	own := poll(provisioned.Operation)
	for _, foreign := range []string{"provision", "update", "deprovision", uuid.NewString()} {
		if got := poll(foreign); got != own {
			t.Errorf("operation=%s: %s, want the provision's %s", foreign, got, own)
		}
	}
	upd, err := c.UpdateInstance(&osb.UpdateInstanceRequest{InstanceID: id, AcceptsIncomplete: true, ServiceID: serviceID,
		Parameters: map[string]any{"force_tls": true}})
	if err != nil || upd.OperationKey == nil {
		t.Fatalf("update: %+v %v", upd, err)
	}
	waitOperation(t, c, id, upd.OperationKey, 3*time.Minute)
	latest := poll(string(*upd.OperationKey))
	if latest == own {
		t.Fatalf("test bug: the update's answer %s is the provision's", latest)
	}
	if got := poll("provision"); got != latest {
		t.Errorf("operation=provision after an update: %s, want the latest (the update's) %s", got, latest)
	}

	status, body = b.raw("GET", "/v2/service_instances/"+id, "", nil)
	if status != http.StatusOK || !strings.Contains(body, `"dashboard_url":"`+wantURL+`"`) {
		t.Errorf("GET instance: %d %s, want dashboard_url %s", status, body, wantURL)
	}
	// The dashboard_url answers a browser without broker credentials: a 303 to
	// the login under PGBROKER_EXTERNAL_URL's path (its proxy strips /pg), and
	// the login page names nothing the URL did not.
	resp, err := noRedirect.Get(b.url + "/dashboard/instances/" + id)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	status, loc := resp.StatusCode, resp.Header.Get("Location")
	if status != http.StatusSeeOther || loc != "/pg/dashboard/instances/"+id+"/login" {
		t.Errorf("dashboard_url: %d to %q, want 303 to /pg/dashboard/instances/%s/login", status, loc, id)
	}
	known, page := asBrowser(t, b, http.MethodGet, "/dashboard/instances/"+id+"/login", "", nil, nil)
	stranger := uuid.NewString()
	_, other := asBrowser(t, b, http.MethodGet, "/dashboard/instances/"+stranger+"/login", "", nil, nil)
	if known != http.StatusOK || !strings.Contains(page, `name="password"`) || strings.ReplaceAll(page, id, "") != strings.ReplaceAll(other, stranger, "") {
		t.Errorf("login page: %d %.300s; want 200 with the form, the same for an unknown instance", known, page)
	}

	catalog, err := c.GetCatalog()
	if err != nil {
		t.Fatal(err)
	}
	const want = 20*60 + 7*60 + 15
	for _, p := range catalog.Services[0].Plans {
		if p.MaximumPollingDuration == nil || *p.MaximumPollingDuration != want {
			t.Errorf("plan %s: maximum_polling_duration %v, want %d", p.ID, p.MaximumPollingDuration, want)
		}
	}
}
