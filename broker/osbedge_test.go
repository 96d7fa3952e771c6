package broker

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/pivotal-cf/brokerapi/v10/domain"

	"github.com/pgbroker/pgbroker/store"
)

// TestUnknownServiceOrPlanIDIsRefusedAndChangesNothing: bind, unbind,
// update and deprovision with a service_id or plan_id that is not in the
// catalog (or not the instance's service) answer 400 naming the field, and
// create, drop or record nothing.
func TestUnknownServiceOrPlanIDIsRefusedAndChangesNothing(t *testing.T) {
	f := newFixture(t, store.PortRange{Min: 40020, Max: 40029})
	ctx := context.Background()
	f.provisioned(t, "i-1", "postgresql-starter-512")
	provisionOp, _ := f.st.Instances().LatestOperation(ctx, "i-1")
	const bogus = "xxxx-xxxx-xxxx-xxxx"
	ids := []struct {
		name, service, plan, field string
	}{
		{"unknown service_id", bogus, "postgresql-starter-512", "service_id"},
		{"unknown plan_id", "postgresql", bogus, "plan_id"},
		{"both unknown", bogus, bogus, "service_id"},
	}
	refused := func(t *testing.T, what string, err error, field string) {
		t.Helper()
		if status(err) != http.StatusBadRequest || !strings.Contains(err.Error(), field) || !strings.Contains(err.Error(), bogus) {
			t.Fatalf("%s: %v, want 400 naming %s and the value", what, err, field)
		}
	}
	for _, tt := range ids {
		t.Run(tt.name, func(t *testing.T) {
			_, err := f.b.Bind(ctx, "i-1", "b-"+tt.field, domain.BindDetails{ServiceID: tt.service, PlanID: tt.plan}, false)
			refused(t, "bind", err, tt.field)
			if _, err := f.st.Bindings().GetBinding(ctx, "i-1", "b-"+tt.field); !errors.Is(err, store.ErrNotFound) {
				t.Errorf("a refused bind recorded the binding: %v", err)
			}
			_, err = f.b.Update(ctx, "i-1", domain.UpdateDetails{ServiceID: tt.service, PlanID: tt.plan}, true)
			refused(t, "update", err, tt.field)
			_, err = f.b.Deprovision(ctx, "i-1", domain.DeprovisionDetails{ServiceID: tt.service, PlanID: tt.plan}, true)
			refused(t, "deprovision", err, tt.field)
		})
	}
	if f.inst.binds != 0 {
		t.Fatalf("%d binding roles created by refused binds", f.inst.binds)
	}
	if op, _ := f.st.Instances().LatestOperation(ctx, "i-1"); op.ID != provisionOp.ID {
		t.Fatalf("a refused request recorded operation %+v", op)
	}

	// A real binding, then unbind with wrong ids: the role and the row stay.
	if _, err := f.b.Bind(ctx, "i-1", "b-1", domain.BindDetails{ServiceID: "postgresql", PlanID: "postgresql-starter-512"}, false); err != nil {
		t.Fatalf("bind: %v", err)
	}
	for _, tt := range ids {
		_, err := f.b.Unbind(ctx, "i-1", "b-1", domain.UnbindDetails{ServiceID: tt.service, PlanID: tt.plan}, false)
		refused(t, "unbind "+tt.name, err, tt.field)
	}
	if _, err := f.st.Bindings().GetBinding(ctx, "i-1", "b-1"); err != nil || f.inst.unbinds != 0 {
		t.Fatalf("after refused unbinds: binding %v, %d roles dropped", err, f.inst.unbinds)
	}
	if _, err := f.b.Unbind(ctx, "i-1", "b-1", domain.UnbindDetails{ServiceID: "postgresql", PlanID: "postgresql-starter-512"}, false); err != nil {
		t.Fatalf("unbind with the right ids: %v", err)
	}
}

// TestPlanIDOfTheSameServiceIsAccepted: plan_id need not be the instance's
// current plan (a platform may still hold the plan of before an update), and
// update's optional plan_id may be absent.
func TestPlanIDOfTheSameServiceIsAccepted(t *testing.T) {
	f := newFixture(t, store.PortRange{Min: 40030, Max: 40039})
	ctx := context.Background()
	f.provisioned(t, "i-1", "postgresql-starter-512")
	if _, err := f.b.Bind(ctx, "i-1", "b-1", domain.BindDetails{ServiceID: "postgresql", PlanID: "postgresql-starter-1024"}, false); err != nil {
		t.Fatalf("bind with another plan of the service: %v", err)
	}
	if spec, err := f.b.Update(ctx, "i-1", domain.UpdateDetails{ServiceID: "postgresql"}, true); err != nil || spec.IsAsync {
		t.Fatalf("update without plan_id nor parameters: %+v %v, want 200 without operation", spec, err)
	}
}

// TestLastOperationWithAForeignOperationAnswersTheLatest: an operation value
// the broker never issued for the instance (a kind, another instance's
// operation, garbage) answers for the instance's latest operation.
func TestLastOperationWithAForeignOperationAnswersTheLatest(t *testing.T) {
	f := newFixture(t, store.PortRange{Min: 40040, Max: 40049})
	ctx := context.Background()
	other, err := f.b.Provision(ctx, "i-2", details("postgresql-sandbox"), true)
	if err != nil {
		t.Fatal(err)
	}
	f.provisioned(t, "i-1", "postgresql-sandbox")
	poll := func(operation string) domain.LastOperation {
		t.Helper()
		lo, err := f.b.LastOperation(ctx, "i-1", domain.PollDetails{OperationData: operation})
		if err != nil {
			t.Fatalf("last_operation with operation %q: %v, want 200", operation, err)
		}
		return lo
	}
	for _, op := range []string{"", "provision", "update", "deprovision", other.OperationData, "'; DROP TABLE operations; --"} {
		if lo := poll(op); lo.State != domain.Succeeded || lo.Description != "ready" {
			t.Errorf("operation %q: %+v, want i-1's provision (succeeded, ready)", op, lo)
		}
	}
	upd, err := f.b.Update(ctx, "i-1", domain.UpdateDetails{ServiceID: "postgresql", PlanID: "postgresql-starter-512"}, true)
	if err != nil || !upd.IsAsync {
		t.Fatalf("update: %+v %v", upd, err)
	}
	if lo := poll("provision"); lo.State != domain.InProgress {
		t.Errorf("operation \"provision\" during an update: %+v, want the update in progress", lo)
	}
	if lo, _ := f.b.LastOperation(ctx, "i-2", domain.PollDetails{OperationData: upd.OperationData}); lo.State != domain.InProgress {
		t.Errorf("i-2 polled with i-1's update: %+v, want i-2's own provision in progress", lo)
	}
	if _, err := f.b.LastOperation(ctx, "nope", domain.PollDetails{OperationData: "provision"}); status(err) != http.StatusNotFound {
		t.Errorf("unknown instance: %v, want 404", err)
	}
}

// TestLastBindingOperationAnswersForTheBinding: bindings are synchronous;
// polling one answers succeeded while it exists, 404 otherwise, whatever
// the operation value.
func TestLastBindingOperationAnswersForTheBinding(t *testing.T) {
	f := newFixture(t, store.PortRange{Min: 40050, Max: 40059})
	ctx := context.Background()
	f.provisioned(t, "i-1", "postgresql-sandbox")
	if _, err := f.b.Bind(ctx, "i-1", "b-1", domain.BindDetails{ServiceID: "postgresql", PlanID: "postgresql-sandbox"}, false); err != nil {
		t.Fatal(err)
	}
	for _, op := range []string{"", "bind", "garbage"} {
		lo, err := f.b.LastBindingOperation(ctx, "i-1", "b-1", domain.PollDetails{OperationData: op})
		if err != nil || lo.State != domain.Succeeded {
			t.Errorf("operation %q: %+v %v, want succeeded", op, lo, err)
		}
	}
	if _, err := f.b.LastBindingOperation(ctx, "i-1", "b-2", domain.PollDetails{OperationData: "bind"}); status(err) != http.StatusNotFound {
		t.Errorf("unknown binding: %v, want 404", err)
	}
	if _, err := f.b.LastBindingOperation(ctx, "nope", "b-1", domain.PollDetails{}); status(err) != http.StatusNotFound {
		t.Errorf("unknown instance: %v, want 404", err)
	}
}

// TestDashboardURLAndMaximumPollingDuration: provision (first answer and
// repeats) and GET instance carry the dashboard_url; every plan announces
// the maximum polling duration in whole seconds, rounded up.
func TestDashboardURLAndMaximumPollingDuration(t *testing.T) {
	f := newFixture(t, store.PortRange{Min: 40060, Max: 40069})
	ctx := context.Background()
	f.b.WithDashboardURL(func(id string) string { return "https://pg.example.com/dashboard/instances/" + id }).
		WithMaximumPollingDuration(36*time.Minute + 30*time.Second + time.Millisecond)
	const want = "https://pg.example.com/dashboard/instances/i-1"
	spec, err := f.b.Provision(ctx, "i-1", details("postgresql-sandbox"), true)
	if err != nil || spec.DashboardURL != want {
		t.Fatalf("provision: %+v %v, want dashboard_url %s", spec, err, want)
	}
	again, _ := f.b.Provision(ctx, "i-1", details("postgresql-sandbox"), true)
	if again.DashboardURL != want {
		t.Errorf("repeated provision: dashboard_url %q", again.DashboardURL)
	}
	_ = f.st.Instances().FinishOperation(ctx, spec.OperationData, store.Succeeded, "ready")
	got, err := f.b.GetInstance(ctx, "i-1", domain.FetchInstanceDetails{})
	if err != nil || got.DashboardURL != want {
		t.Fatalf("GET instance: %+v %v, want dashboard_url %s", got, err, want)
	}
	services, _ := f.b.Services(ctx)
	for _, p := range services[0].Plans {
		if p.MaximumPollingDuration == nil || *p.MaximumPollingDuration != 2191 {
			t.Errorf("plan %s: maximum_polling_duration %v, want 2191", p.ID, p.MaximumPollingDuration)
		}
	}
}
