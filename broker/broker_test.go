package broker

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/pivotal-cf/brokerapi/v10/domain"
	"github.com/pivotal-cf/brokerapi/v10/domain/apiresponses"

	"github.com/pgbroker/pgbroker/catalog"
	"github.com/pgbroker/pgbroker/credentials"
	"github.com/pgbroker/pgbroker/naming"
	"github.com/pgbroker/pgbroker/store"
	"github.com/pgbroker/pgbroker/store/storetest"
)

// fakeInstances stands in for the executor's synchronous side (instances.Service).
type fakeInstances struct {
	dataSize       int64
	binds, unbinds int // calls of Bind and Unbind
}

func (f *fakeInstances) DataSize(context.Context, store.Instance) (int64, error) {
	return f.dataSize, nil
}
func (f *fakeInstances) Bind(context.Context, store.Instance, string, bool) (credentials.Credentials, error) {
	f.binds++
	return credentials.Credentials{}, nil
}
func (f *fakeInstances) Credentials(context.Context, store.Instance, string, bool) (credentials.Credentials, error) {
	return credentials.Credentials{}, nil
}
func (f *fakeInstances) Unbind(context.Context, store.Instance, string) error {
	f.unbinds++
	return nil
}
func (f *fakeInstances) Members(context.Context, store.Instance) (string, error) {
	return "", nil
}

type fixture struct {
	b        *Broker
	st       *store.Store
	inst     *fakeInstances
	mu       sync.Mutex
	enqueued []string
	failNext bool
}

func newFixture(t *testing.T, ports store.PortRange, prepare ...func(*catalog.Catalog)) *fixture {
	t.Helper()
	cat, err := catalog.Default()
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range prepare {
		p(cat)
	}
	f := &fixture{st: storetest.New(t), inst: &fakeInstances{}}
	enqueue := func(_ context.Context, _ pgx.Tx, opID string) error {
		f.mu.Lock()
		defer f.mu.Unlock()
		if f.failNext {
			f.failNext = false
			return errors.New("queue unavailable")
		}
		f.enqueued = append(f.enqueued, opID)
		return nil
	}
	f.b = New(cat, f.st, enqueue, f.inst, ports, slog.New(slog.NewTextHandler(io.Discard, nil)))
	return f
}

func details(plan string) domain.ProvisionDetails {
	return domain.ProvisionDetails{ServiceID: "postgresql", PlanID: plan, OrganizationGUID: "org", SpaceGUID: "space"}
}

func status(err error) int {
	var fr *apiresponses.FailureResponse
	if errors.As(err, &fr) {
		return fr.ValidatedStatusCode(nil)
	}
	if err == nil {
		return 0
	}
	return 500
}

// provisioned provisions id on plan and marks the operation succeeded.
func (f *fixture) provisioned(t *testing.T, id, plan string) {
	t.Helper()
	spec, err := f.b.Provision(context.Background(), id, details(plan), true)
	if err != nil {
		t.Fatal(err)
	}
	if err := f.st.Instances().FinishOperation(context.Background(), spec.OperationData, store.Succeeded, "ready"); err != nil {
		t.Fatal(err)
	}
}

func TestProvisionRecordsInstanceOperationAndJobTogether(t *testing.T) {
	f := newFixture(t, store.PortRange{Min: 40000, Max: 40001})
	ctx := context.Background()
	spec, err := f.b.Provision(ctx, "i-1", details("postgresql-starter-512"), true)
	if err != nil || !spec.IsAsync || spec.OperationData == "" {
		t.Fatalf("provision: %+v, %v", spec, err)
	}
	if len(f.enqueued) != 1 || f.enqueued[0] != spec.OperationData {
		t.Fatalf("enqueued %v, want the operation once", f.enqueued)
	}
	inst, err := f.st.Instances().GetInstance(ctx, "i-1")
	if err != nil || inst.GatewayPort != 40000 || inst.ShortID != naming.ShortID("i-1") {
		t.Fatalf("instance %+v, %v", inst, err)
	}
	op, err := f.st.Instances().LatestOperation(ctx, "i-1")
	if err != nil || op.State != store.InProgress || op.Kind != store.KindProvision {
		t.Fatalf("operation %+v, %v", op, err)
	}
}

func TestProvisionRollsBackWhenEnqueueFails(t *testing.T) {
	f := newFixture(t, store.PortRange{Min: 40000, Max: 40001})
	f.failNext = true
	_, err := f.b.Provision(context.Background(), "i-1", details("postgresql-sandbox"), true)
	if status(err) != http.StatusInternalServerError || !strings.Contains(err.Error(), "state database") {
		t.Fatalf("err %v, want a 500 naming the state database", err)
	}
	if _, err := f.st.Instances().GetInstance(context.Background(), "i-1"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("instance recorded although its job was not: %v", err)
	}
}

func TestProvisionWhenEveryGatewayPortIsTaken(t *testing.T) {
	f := newFixture(t, store.PortRange{Min: 40000, Max: 40000})
	f.provisioned(t, "i-1", "postgresql-sandbox")
	_, err := f.b.Provision(context.Background(), "i-2", details("postgresql-sandbox"), true)
	if !errors.Is(err, apiresponses.ErrInstanceLimitMet) {
		t.Fatalf("err %v, want instance limit", err)
	}
}

func TestProvisionSameIDDifferentPlanConflicts(t *testing.T) {
	f := newFixture(t, store.PortRange{Min: 40000, Max: 40009})
	ctx := context.Background()
	first, _ := f.b.Provision(ctx, "i-1", details("postgresql-sandbox"), true)
	again, err := f.b.Provision(ctx, "i-1", details("postgresql-sandbox"), true)
	if err != nil || !again.IsAsync || again.OperationData != first.OperationData {
		t.Fatalf("identical while in progress: %+v %v, want 202 with %s", again, err, first.OperationData)
	}
	if _, err := f.b.Provision(ctx, "i-1", details("postgresql-starter-512"), true); status(err) != http.StatusConflict {
		t.Fatalf("other plan: %v, want 409", err)
	}
	_ = f.st.Instances().FinishOperation(ctx, first.OperationData, store.Succeeded, "ready")
	done, err := f.b.Provision(ctx, "i-1", details("postgresql-sandbox"), true)
	if err != nil || !done.AlreadyExists {
		t.Fatalf("identical after success: %+v %v, want 200", done, err)
	}
}

func TestUpdateRules(t *testing.T) {
	f := newFixture(t, store.PortRange{Min: 40000, Max: 40009})
	ctx := context.Background()
	f.provisioned(t, "i-1", "postgresql-starter-1024")
	upd := func(plan string) error {
		_, err := f.b.Update(ctx, "i-1", domain.UpdateDetails{ServiceID: "postgresql", PlanID: plan}, true)
		return err
	}
	if spec, err := f.b.Update(ctx, "i-1", domain.UpdateDetails{ServiceID: "postgresql", PlanID: "postgresql-starter-1024"}, true); err != nil || spec.IsAsync {
		t.Fatalf("same plan: %+v %v, want 200 without operation", spec, err)
	}
	if err := upd("postgresql-business-1024"); status(err) != 422 || !strings.Contains(err.Error(), "PGBROKER_ETCD_ENDPOINTS") {
		t.Fatalf("to Business without etcd: %v, want 422 naming PGBROKER_ETCD_ENDPOINTS", err)
	}
	f.inst.dataSize = 11 << 30
	if err := upd("postgresql-starter-512"); status(err) != 422 || !strings.Contains(err.Error(), "11.0 GiB") || !strings.Contains(err.Error(), "10.0 GiB") {
		t.Fatalf("shrink below data: %v, want 422 naming 11.0 GiB and 10.0 GiB", err)
	}
	f.inst.dataSize = 1 << 30
	if err := upd("postgresql-starter-512"); err != nil {
		t.Fatalf("shrink with room: %v", err)
	}
	if err := upd("postgresql-starter-2048"); !errors.Is(err, apiresponses.ErrConcurrentInstanceAccess) {
		t.Fatalf("second update while the first runs: %v, want 422 ConcurrencyError", err)
	}
	if _, err := f.b.GetInstance(ctx, "i-1", domain.FetchInstanceDetails{}); !errors.Is(err, apiresponses.ErrConcurrentInstanceAccess) {
		t.Fatalf("GET while updating: %v, want 422", err)
	}
	if _, err := f.b.Update(ctx, "i-1", domain.UpdateDetails{ServiceID: "postgresql", PlanID: "postgresql-starter-2048"}, false); !errors.Is(err, apiresponses.ErrAsyncRequired) {
		t.Fatalf("without accepts_incomplete: %v", err)
	}
	if _, err := f.b.Update(ctx, "i-1", domain.UpdateDetails{PlanID: "postgresql-starter-2048"}, true); status(err) != 400 || !strings.Contains(err.Error(), "service_id") {
		t.Fatalf("update without service_id: %v, want 400 naming service_id", err)
	}
	if _, err := f.b.Update(ctx, "nope", domain.UpdateDetails{ServiceID: "postgresql", PlanID: "postgresql-starter-2048"}, true); status(err) != 404 {
		t.Fatalf("unknown instance: %v, want 404", err)
	}
}

func TestLastOperationAndDeprovision(t *testing.T) {
	f := newFixture(t, store.PortRange{Min: 40000, Max: 40009})
	ctx := context.Background()
	spec, _ := f.b.Provision(ctx, "i-1", details("postgresql-sandbox"), true)
	if _, err := f.b.GetInstance(ctx, "i-1", domain.FetchInstanceDetails{}); status(err) != 404 {
		t.Fatalf("GET while provisioning: %v, want 404", err)
	}
	lo, err := f.b.LastOperation(ctx, "i-1", domain.PollDetails{OperationData: spec.OperationData})
	if err != nil || lo.State != domain.InProgress {
		t.Fatalf("last_operation %+v %v", lo, err)
	}
	if lo, err := f.b.LastOperation(ctx, "i-1", domain.PollDetails{OperationData: "not-an-operation"}); err != nil || lo.State != domain.InProgress {
		t.Fatalf("unknown operation: %+v %v, want the latest (in progress)", lo, err)
	}
	if _, err := f.b.Deprovision(ctx, "i-1", domain.DeprovisionDetails{}, true); !errors.Is(err, apiresponses.ErrConcurrentInstanceAccess) {
		t.Fatalf("deprovision while provisioning: %v, want 422", err)
	}
	_ = f.st.Instances().FinishOperation(ctx, spec.OperationData, store.Succeeded, "ready")
	d1, err := f.b.Deprovision(ctx, "i-1", domain.DeprovisionDetails{}, true)
	if err != nil || !d1.IsAsync {
		t.Fatalf("deprovision: %+v %v", d1, err)
	}
	d2, err := f.b.Deprovision(ctx, "i-1", domain.DeprovisionDetails{}, true)
	if err != nil || d2.OperationData != d1.OperationData {
		t.Fatalf("repeated deprovision: %+v %v, want the same operation", d2, err)
	}
	_ = f.st.Instances().FinishOperation(ctx, d1.OperationData, store.Succeeded, "deprovisioned")
	if _, err := f.b.LastOperation(ctx, "i-1", domain.PollDetails{}); !errors.Is(err, apiresponses.ErrInstanceDoesNotExist) {
		t.Fatalf("last_operation after deprovision: %v, want 410", err)
	}
	if _, err := f.b.Deprovision(ctx, "i-1", domain.DeprovisionDetails{}, true); !errors.Is(err, apiresponses.ErrInstanceDoesNotExist) {
		t.Fatalf("deprovision twice: %v, want 410", err)
	}
	inst, _ := f.st.Instances().GetInstance(ctx, "i-1")
	if inst.GatewayPort != 0 {
		t.Fatalf("gateway port %d still held after deprovision", inst.GatewayPort)
	}
	if _, err := f.b.Provision(ctx, "i-2", details("postgresql-sandbox"), true); err != nil {
		t.Fatalf("the released port is not reusable: %v", err)
	}
}

// TestSettingsParameters: extensions and force_tls are checked (422 naming
// the allowed extensions, nothing recorded), an update that changes nothing
// is 200 without an operation, and a succeeded update makes them the
// instance's (GET instance shows them).
func TestSettingsParameters(t *testing.T) {
	f := newFixture(t, store.PortRange{Min: 40010, Max: 40019})
	ctx := context.Background()
	bad := details("postgresql-sandbox")
	bad.RawParameters = []byte(`{"extensions": ["postgis"]}`)
	if _, err := f.b.Provision(ctx, "i-bad", bad, true); status(err) != 422 || !strings.Contains(err.Error(), "pgcrypto") {
		t.Fatalf("provision with postgis: %v, want 422 naming the allowed extensions", err)
	}
	if _, err := f.st.Instances().GetInstance(ctx, "i-bad"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("a refused provision recorded the instance: %v", err)
	}
	good := details("postgresql-sandbox")
	good.RawParameters = []byte(`{"extensions": ["pgcrypto", "hstore"]}`)
	spec, err := f.b.Provision(ctx, "i-2", good, true)
	if err != nil {
		t.Fatal(err)
	}
	if err := f.st.Instances().FinishOperation(ctx, spec.OperationData, store.Succeeded, "ready"); err != nil {
		t.Fatal(err)
	}
	inst, _ := f.st.Instances().GetInstance(ctx, "i-2")
	if strings.Join(inst.Extensions, ",") != "hstore,pgcrypto" || inst.ForceTLS {
		t.Fatalf("after provision: extensions %v force_tls %v", inst.Extensions, inst.ForceTLS)
	}
	upd := func(params string) (domain.UpdateServiceSpec, error) {
		return f.b.Update(ctx, "i-2", domain.UpdateDetails{ServiceID: "postgresql", RawParameters: []byte(params)}, true)
	}
	if spec, err := upd(`{"extensions": ["pgcrypto", "hstore"], "force_tls": false}`); err != nil || spec.IsAsync {
		t.Fatalf("same settings: %+v %v, want 200 without an operation", spec, err)
	}
	if _, err := upd(`{"extensions": ["nope"]}`); status(err) != 422 {
		t.Fatalf("unknown extension on update: %v, want 422", err)
	}
	if _, err := upd(`{"force_tls": "yes"}`); status(err) != 400 || !strings.Contains(err.Error(), "force_tls") {
		t.Fatalf("force_tls not a boolean: %v, want 400 naming it", err)
	}
	spec2, err := upd(`{"force_tls": true, "extensions": ["pg_stat_statements"]}`)
	if err != nil || !spec2.IsAsync {
		t.Fatalf("change settings: %+v %v", spec2, err)
	}
	if inst, _ := f.st.Instances().GetInstance(ctx, "i-2"); inst.ForceTLS || len(inst.Extensions) != 2 {
		t.Fatalf("settings applied before the operation succeeded: %+v", inst)
	}
	if err := f.st.Instances().FinishOperation(ctx, spec2.OperationData, store.Succeeded, "done"); err != nil {
		t.Fatal(err)
	}
	got, err := f.b.GetInstance(ctx, "i-2", domain.FetchInstanceDetails{})
	if err != nil {
		t.Fatal(err)
	}
	params := got.Parameters.(map[string]any)
	if params["force_tls"] != true || strings.Join(params["extensions"].([]string), ",") != "pg_stat_statements" {
		t.Fatalf("GET instance parameters %v", params)
	}
}
