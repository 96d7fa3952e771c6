package provisioner

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/hashicorp/nomad/api"

	"github.com/pgbroker/pgbroker/crashpoint"
	"github.com/pgbroker/pgbroker/naming"
	"github.com/pgbroker/pgbroker/nomad"
	"github.com/pgbroker/pgbroker/patroni"
	"github.com/pgbroker/pgbroker/pgadmin"
	"github.com/pgbroker/pgbroker/pki"
	"github.com/pgbroker/pgbroker/servercert"
	"github.com/pgbroker/pgbroker/tiers"
)

// world is one in-memory Nomad cluster with the instances' PostgreSQL and
// Patroni on it, shared by the fakes below. It records the significant
// calls it gets, in order, as "<kind> <details>" lines (world.log), and
// what real Patroni would have made of them as "VIOLATION ..." lines: a
// leader stopped without a switchover (an unplanned failover), a
// synchronous standby stopped while synchronous_mode is on (commits wait),
// a node job under Patroni registered before its etcd user exists with the
// Variable's etcd_password (its Patroni could not log in to etcd).
// A switchover Patroni would refuse fails, as its 412 does.
type world struct {
	mu       sync.Mutex
	log      []string
	jobs     map[string]*api.Job                  // current definition by job id
	versions map[string]int                       // registered versions by job id (0 when registered once)
	allocs   map[string][]*api.AllocationListStub // by job id, oldest first
	vars     map[string]map[string]string         // Variables by path
	leader   map[string]string                    // Patroni leader by instance short id; "" none elected
	sync     map[string]bool                      // Patroni synchronous_mode by short id
	marker   map[string]string                    // restore id in node-0's data directory, by short id
	data     map[string]bool                      // data directories: "<client>:<short>/<node group>"
	seq      int                                  // allocation ids
	params   map[string]map[string]any            // Patroni parameters by short id
	etcd     map[string]string                    // etcd users (scope) and their passwords
	calls    int                                  // calls into the fakes so far
	crashAt  int                                  // when > 0, the calls-th call crashes (panics with crashed) before it acts
	major    map[string]int                       // PostgreSQL major of node-0's data by short id (15 when unset)
	failing  map[string]bool                      // phases of upgrade.nomad.hcl that fail ("check", "upgrade")
	upgrades int                                  // pg_upgrade runs that changed a data directory
}

func newWorld() *world {
	return &world{jobs: map[string]*api.Job{}, versions: map[string]int{}, allocs: map[string][]*api.AllocationListStub{},
		vars: map[string]map[string]string{}, leader: map[string]string{}, sync: map[string]bool{},
		marker: map[string]string{}, params: map[string]map[string]any{}, data: map[string]bool{}, etcd: map[string]string{},
		major: map[string]int{}, failing: map[string]bool{}}
}

func (w *world) record(format string, args ...any) {
	w.log = append(w.log, fmt.Sprintf(format, args...))
}

// fail counts call, crashes the broker before it when it is the crashAt-th,
// and returns ctx's error.
func (w *world) fail(ctx context.Context, call string) error {
	w.mu.Lock()
	w.calls++
	crash := w.calls == w.crashAt
	w.mu.Unlock()
	if crash {
		panic(crashed{"before call " + call})
	}
	return ctx.Err()
}

// act counts call (fail), then runs f under the lock.
func (w *world) act(ctx context.Context, call string, f func()) error {
	if err := w.fail(ctx, call); err != nil {
		return err
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	f()
	return nil
}

// provisioner returns a Provisioner on this world with a CA loaded from
// (or made in) its Variables, as a broker starting afresh would.
func (w *world) provisioner(t *testing.T) *Provisioner {
	t.Helper()
	p := newWith(adapters{
		nomad: nomadRoles{jobs: w, allocations: w, Secrets: w, allocExec: w},
		clusters: func(_ context.Context, short string) (tiers.Cluster, error) {
			return &fakePatroni{w: w, short: short}, nil
		},
		dcs: fakeEtcd{w},
		connect: func(host string, port int, user, password string, tlsConfig *tls.Config) AdminConn {
			short := strings.TrimSuffix(strings.TrimPrefix(tlsConfig.ServerName, "pg-"), "-node")
			return &fakeAdmin{w: w, short: short, password: password}
		},
	}, Config{BrokerName: "test", PITRRepo: "/srv/pgbackrest", Etcd: []string{"127.0.0.1:2379"},
		PostgresBinDirs: map[string]string{"15.20": "/pg/15.20/bin", "18.6": "/pg/18.6/bin"}}, slog.New(slog.DiscardHandler))
	if _, err := p.LoadCA(context.Background(), servercert.CASource{}); err != nil {
		t.Fatal(err)
	}
	return p
}

// significant returns the lines of the log whose kind is one of kinds.
func (w *world) significant(kinds ...string) []string {
	w.mu.Lock()
	defer w.mu.Unlock()
	var out []string
	for _, l := range w.log {
		kind, _, _ := strings.Cut(l, " ")
		if slices.Contains(kinds, kind) || kind == "VIOLATION" {
			out = append(out, l)
		}
	}
	return out
}

func (w *world) resetLog() {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.log = nil
}

// --- Nomad: jobs -----------------------------------------------------------

func shortOf(jobID string) string {
	s := strings.TrimPrefix(jobID, "pg-")
	short, _, _ := strings.Cut(s, "-")
	return short
}

// Parse makes the job the HCL files would: one task group node-<i> of count 1
// per node, one group "gateway" of count gateway_count, one batch group
// "cleanup". A group's definition is its variables but the counts and
// node_id (task config "def"): a group whose definition changes is
// replaced, others are updated in place, as Nomad does with a constraint
// its client still meets (node_id is one).
func (w *world) Parse(_, jobID string, vars map[string]any) (*api.Job, error) {
	def := maps.Clone(vars)
	defText := fmt.Sprint(withoutKeys(def, "node_count", "gateway_count", "node_id")) // fmt prints maps sorted by key
	group := func(name string, count int, task string) *api.TaskGroup {
		return &api.TaskGroup{Name: &name, Count: &count, Tasks: []*api.Task{{Name: task, Config: map[string]any{"def": defText, "vars": def}}}}
	}
	id := jobID
	job := &api.Job{ID: &id, Name: &id, Meta: map[string]string{naming.MetaBroker: "test"}}
	switch {
	case strings.HasSuffix(jobID, "-nodes"):
		for i := 0; i < vars["node_count"].(int); i++ {
			g := group(naming.Member(i), 1, "postgres")
			if dir, ok := vars["postgres_bin_dir"].(string); ok { // the start script names the binaries
				start := "bin='" + dir + "'\n"
				g.Tasks[0].Templates = []*api.Template{{EmbeddedTmpl: &start}}
			}
			job.TaskGroups = append(job.TaskGroups, g)
		}
	case strings.Contains(jobID, "-upgrade-"):
		batch := "batch"
		job.Type = &batch
		job.TaskGroups = []*api.TaskGroup{group("upgrade", 1, "upgrade")}
	case strings.HasSuffix(jobID, "-gateways"):
		job.TaskGroups = []*api.TaskGroup{group("gateway", vars["gateway_count"].(int), "haproxy")}
	case strings.HasSuffix(jobID, "-cleanup"):
		batch := "batch"
		job.Type = &batch
		job.TaskGroups = []*api.TaskGroup{group("cleanup", 1, "cleanup")}
	default:
		return nil, fmt.Errorf("fake Nomad parses no job %s", jobID)
	}
	return job, nil
}

func withoutKeys(m map[string]any, keys ...string) map[string]any {
	out := maps.Clone(m)
	for _, k := range keys {
		delete(out, k)
	}
	return out
}

func groupDef(g *api.TaskGroup) string { return g.Tasks[0].Config["def"].(string) }
func groupVar(g *api.TaskGroup, k string) any {
	return g.Tasks[0].Config["vars"].(map[string]any)[k]
}

func sameJob(a, b *api.Job) bool {
	if !maps.Equal(a.Meta, b.Meta) || len(a.TaskGroups) != len(b.TaskGroups) || (a.Stop != nil && *a.Stop) != (b.Stop != nil && *b.Stop) {
		return false
	}
	for i := range a.TaskGroups {
		x, y := a.TaskGroups[i], b.TaskGroups[i]
		if *x.Name != *y.Name || *x.Count != *y.Count || groupDef(x) != groupDef(y) {
			return false
		}
	}
	return true
}

func (w *world) Register(ctx context.Context, job *api.Job) (uint64, error) {
	if err := w.fail(ctx, "register "+*job.ID); err != nil {
		return 0, err
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	id := *job.ID
	cur, ok := w.jobs[id]
	if ok && sameJob(cur, job) {
		// Nomad makes no new version of an identical job, and updates a
		// new pin (node_id, node_clients) in place; kept to be read back.
		kept := *job
		kept.Version, kept.Stop = cur.Version, cur.Stop
		w.jobs[id] = &kept
		return uint64(w.versions[id]), nil
	}
	version := 0
	if ok {
		version = w.versions[id] + 1
	}
	w.versions[id] = version
	stored := *job
	v := uint64(version)
	stored.Version = &v
	stored.Stop = nil
	w.jobs[id] = &stored
	w.record("register %s v%d", id, version)
	if pw, ok := w.etcd[patroni.Scope(shortOf(id))]; stored.Meta[naming.MetaPatroni] == "true" &&
		(!ok || pw == "" || pw != w.vars[naming.NodesSecretPath(shortOf(id))]["etcd_password"]) {
		w.record("VIOLATION %s under Patroni registered before its etcd user with the Variable's etcd_password", id)
	}
	if stored.Type != nil && *stored.Type == "batch" && strings.Contains(id, "-upgrade-") {
		w.upgradePhase(id, &stored, v)
		return v, nil
	}
	if stored.Type != nil && *stored.Type == "batch" {
		g := stored.TaskGroups[0]
		client, groups := groupVar(g, "node_id").(string), groupVar(g, "node_groups").([]string)
		w.record("cleanup %s %v", client, groups)
		w.clean(client, shortOf(id), groups)
		w.place(id, "cleanup", 0, v, client, api.AllocClientStatusComplete)
		return v, nil
	}
	w.reconcile(id, &stored, cur)
	return v, nil
}

// upgradePhase runs one phase of upgrade.nomad.hcl on node-0's data as its
// script would: check and upgrade do nothing on data of the new major, a
// phase in failing fails, pg_upgrade on data a running node uses is a
// violation, finish needs data of the new major.
func (w *world) upgradePhase(id string, job *api.Job, version uint64) {
	g := job.TaskGroups[0]
	short, client := shortOf(id), groupVar(g, "node_id").(string)
	phase, newMajor := groupVar(g, "phase").(string), groupVar(g, "new_major").(int)
	major := w.major[short]
	if major == 0 {
		major = 15
	}
	status := api.AllocClientStatusComplete
	switch {
	case phase != "finish" && major == newMajor:
		w.record("upgrade %s: already on %d", phase, newMajor)
	case w.failing[phase]:
		w.record("upgrade %s: failed", phase)
		status = api.AllocClientStatusFailed
	case phase == "upgrade":
		if len(w.liveGroups(short)) > 0 {
			w.record("VIOLATION pg_upgrade while node %v of %s runs", w.liveGroups(short), short)
		}
		w.major[short] = newMajor
		w.upgrades++
		w.record("upgrade upgrade: pg_upgrade to %d", newMajor)
	case phase == "finish" && major != newMajor:
		w.record("upgrade finish: not on %d", newMajor)
		status = api.AllocClientStatusFailed
	default:
		w.record("upgrade %s", phase)
	}
	w.place(id, "upgrade", 0, version, client, status)
}

// reconcile does what Nomad's scheduler does on a new version: groups whose
// definition changed are replaced (stop, then place), others follow in
// place, groups or counts gone are stopped.
func (w *world) reconcile(id string, job, prev *api.Job) {
	short := shortOf(id)
	version := *job.Version
	wanted := map[string]bool{}
	for _, g := range job.TaskGroups {
		for k := 0; k < *g.Count; k++ {
			slot := fmt.Sprintf("%s[%d]", *g.Name, k)
			wanted[slot] = true
			live := w.live(id, *g.Name, k)
			if live != nil && prev != nil && groupDef(prevGroup(prev, *g.Name)) == groupDef(g) {
				live.JobVersion = version
				continue
			}
			client := w.client(g, k, live)
			if live != nil {
				w.stopping(id, live)
				w.record("restart %s", slotName(live))
			} else {
				w.record("place %s", slotName(&api.AllocationListStub{JobID: id, TaskGroup: *g.Name, Name: id + "." + slot}))
			}
			w.place(id, *g.Name, k, version, client, api.AllocClientStatusRunning)
			if strings.HasSuffix(id, "-nodes") {
				w.started(short, client, g)
			}
		}
	}
	for _, a := range w.allocs[id] {
		if a.DesiredStatus == api.AllocDesiredStatusRun && !wanted[a.Name[len(id)+1:]] {
			w.stopping(id, a)
			w.record("stop %s", slotName(a))
		}
	}
}

// slotName names an allocation in the log: node-<i> (count 1) or gateway[<k>].
func slotName(a *api.AllocationListStub) string {
	if strings.HasPrefix(a.TaskGroup, "node-") {
		return a.TaskGroup
	}
	return a.Name[len(a.JobID)+1:]
}

func prevGroup(job *api.Job, name string) *api.TaskGroup {
	for _, g := range job.TaskGroups {
		if *g.Name == name {
			return g
		}
	}
	return &api.TaskGroup{Tasks: []*api.Task{{Config: map[string]any{"def": ""}}}}
}

// client places a node group on the client node_id names, else where it
// ran before (its data), else client-<index>; gateway k on client-<k>.
func (w *world) client(g *api.TaskGroup, k int, live *api.AllocationListStub) string {
	if n, _ := groupVar(g, "node_id").(string); n != "" {
		return n
	}
	if live != nil {
		return live.NodeID
	}
	if strings.HasPrefix(*g.Name, "node-") {
		return "client-" + strings.TrimPrefix(*g.Name, "node-")
	}
	return fmt.Sprintf("client-%d", k)
}

// clean deletes, on client, the data directories of groups of instance
// short, or all of them with no groups (cleanup.nomad.hcl).
func (w *world) clean(client, short string, groups []string) {
	for dir := range w.data {
		c, rest, _ := strings.Cut(dir, ":")
		s, group, _ := strings.Cut(rest, "/")
		if c == client && s == short && (len(groups) == 0 || slices.Contains(groups, group)) {
			delete(w.data, dir)
		}
	}
}

// started is a node group's new allocation starting on client: its data
// directory is made if missing; with a restore id, node-0 restores once
// (the start script leaves a marker in the data).
func (w *world) started(short, client string, g *api.TaskGroup) {
	w.data[client+":"+short+"/"+*g.Name] = true
	if r, _ := groupVar(g, "pitr_restore_id").(string); r != "" && *g.Name == naming.Member(0) && w.marker[short] != r {
		w.marker[short] = r
		w.record("restore %s set=%v target=%v", r, groupVar(g, "pitr_set"), groupVar(g, "pitr_target"))
	}
}

// stopping stops allocation a of job id. Under Patroni (the job as now
// registered), stopping the leader or, in synchronous mode, the
// synchronous standby is a violation.
func (w *world) stopping(id string, a *api.AllocationListStub) {
	short := shortOf(id)
	if strings.HasSuffix(id, "-nodes") && w.patroniJob(short) {
		if w.leader[short] == a.TaskGroup {
			w.record("VIOLATION leader %s stopped without a switchover (an unplanned failover)", a.TaskGroup)
			w.leader[short] = ""
		} else if w.sync[short] && w.syncStandby(short) == a.TaskGroup {
			w.record("VIOLATION synchronous standby %s stopped with synchronous_mode on (commits wait)", a.TaskGroup)
		}
	}
	a.DesiredStatus, a.ClientStatus = api.AllocDesiredStatusStop, api.AllocClientStatusComplete
	a.TaskStates = nil
}

func (w *world) place(id, group string, k int, version uint64, client, status string) {
	w.seq++
	a := &api.AllocationListStub{ID: fmt.Sprintf("alloc-%03d", w.seq), Name: fmt.Sprintf("%s.%s[%d]", id, group, k), JobID: id,
		JobVersion: version, TaskGroup: group, NodeID: client, DesiredStatus: api.AllocDesiredStatusRun, ClientStatus: status}
	if status == api.AllocClientStatusRunning {
		a.TaskStates = map[string]*api.TaskState{"postgres": {State: "running"}, "haproxy": {State: "running"}}
	}
	w.allocs[id] = append(w.allocs[id], a)
}

func (w *world) live(id, group string, k int) *api.AllocationListStub {
	for _, a := range w.allocs[id] {
		if a.DesiredStatus == api.AllocDesiredStatusRun && a.Name == fmt.Sprintf("%s.%s[%d]", id, group, k) {
			return a
		}
	}
	return nil
}

// liveGroups returns the node groups of instance short with a running allocation, sorted.
func (w *world) liveGroups(short string) []string {
	var out []string
	for _, a := range w.allocs[naming.NodesJobID(short)] {
		if a.ClientStatus == api.AllocClientStatusRunning {
			out = append(out, a.TaskGroup)
		}
	}
	slices.Sort(out)
	return out
}

func (w *world) patroniJob(short string) bool {
	j, ok := w.jobs[naming.NodesJobID(short)]
	return ok && j.Meta[naming.MetaPatroni] == "true"
}

func (w *world) Job(ctx context.Context, jobID string) (*api.Job, error) {
	if err := w.fail(ctx, "job "+jobID); err != nil {
		return nil, err
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	j, ok := w.jobs[jobID]
	if !ok {
		return nil, fmt.Errorf("read job %s from Nomad: %w", jobID, errNotFound())
	}
	c := *j
	c.Meta = maps.Clone(j.Meta)
	c.TaskGroups = slices.Clone(j.TaskGroups)
	return &c, nil
}

func (w *world) Plan(ctx context.Context, job *api.Job) (*api.JobPlanResponse, error) {
	if err := w.fail(ctx, "plan "+*job.ID); err != nil {
		return nil, err
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	updates := map[string]*api.DesiredUpdates{}
	cur := w.jobs[*job.ID]
	for _, g := range job.TaskGroups {
		u := &api.DesiredUpdates{}
		switch {
		case w.live(*job.ID, *g.Name, 0) == nil:
			u.Place = uint64(*g.Count)
		case cur == nil || groupDef(prevGroup(cur, *g.Name)) != groupDef(g):
			u.DestructiveUpdate = uint64(*g.Count)
		default:
			u.InPlaceUpdate = uint64(*g.Count)
		}
		updates[*g.Name] = u
	}
	return &api.JobPlanResponse{Annotations: &api.PlanAnnotations{DesiredTGUpdates: updates}}, nil
}

func (w *world) Stop(ctx context.Context, jobID string) error {
	return w.act(ctx, "stop "+jobID, func() {
		if j, ok := w.jobs[jobID]; ok {
			stop := true
			j.Stop = &stop
		}
		for _, a := range w.allocs[jobID] {
			if a.DesiredStatus == api.AllocDesiredStatusRun {
				a.DesiredStatus, a.ClientStatus, a.TaskStates = api.AllocDesiredStatusStop, api.AllocClientStatusComplete, nil
			}
		}
		w.record("stop-job %s", jobID)
	})
}

func (w *world) Purge(ctx context.Context, jobID string) error {
	return w.act(ctx, "purge "+jobID, func() {
		delete(w.jobs, jobID)
		delete(w.allocs, jobID)
		delete(w.versions, jobID)
	})
}

func (w *world) JobIDs(ctx context.Context, prefix string) (map[string]nomad.Owner, error) {
	if err := w.fail(ctx, "job ids "+prefix); err != nil {
		return nil, err
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	out := map[string]nomad.Owner{}
	for id, j := range w.jobs {
		if strings.HasPrefix(id, prefix) {
			out[id] = nomad.Owner{Broker: j.Meta[naming.MetaBroker], Deployment: j.Meta[naming.MetaDeployment]}
		}
	}
	return out, nil
}

func (w *world) Ping(ctx context.Context) error { return w.fail(ctx, "ping") }

// errNotFound is Nomad's 404 as its API client returns it (nomad.IsNotFound).
var errNotFound = sync.OnceValue(func() error {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { http.Error(w, "not found", http.StatusNotFound) }))
	defer srv.Close()
	c, err := api.NewClient(&api.Config{Address: srv.URL})
	if err != nil {
		return err
	}
	_, _, err = c.Jobs().Info("missing", nil)
	return err
})

// --- Nomad: allocations ------------------------------------------------------

func (w *world) Allocations(ctx context.Context, jobID string, _ bool) ([]*api.AllocationListStub, error) {
	if err := w.fail(ctx, "allocations "+jobID); err != nil {
		return nil, err
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	out := make([]*api.AllocationListStub, 0, len(w.allocs[jobID]))
	for _, a := range w.allocs[jobID] {
		c := *a
		out = append(out, &c)
	}
	return out, nil
}

func (w *world) AllocationsAfter(ctx context.Context, jobID string, index uint64) ([]*api.AllocationListStub, uint64, error) {
	allocs, err := w.Allocations(ctx, jobID, false)
	return allocs, index + 1, err
}

func (w *world) Allocation(ctx context.Context, allocID string) (*api.Allocation, error) {
	if err := w.fail(ctx, "allocation "+allocID); err != nil {
		return nil, err
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	for _, list := range w.allocs {
		for _, a := range list {
			if a.ID == allocID {
				return &api.Allocation{ID: a.ID, Name: a.Name, NodeID: a.NodeID, JobID: a.JobID, TaskGroup: a.TaskGroup}, nil
			}
		}
	}
	return nil, errNotFound()
}

// WaitRunning: allocations run as soon as they are placed, so one that does
// not run now never will.
func (w *world) WaitRunning(ctx context.Context, jobID string, version uint64, count int, task, what string, _ func(string)) ([]*api.AllocationListStub, error) {
	allocs, err := w.Allocations(ctx, jobID, false)
	if err != nil {
		return nil, err
	}
	var running []*api.AllocationListStub
	for _, a := range allocs {
		if a.JobVersion == version && a.ClientStatus == api.AllocClientStatusRunning && a.TaskStates[task] != nil {
			running = append(running, a)
		}
	}
	if len(running) < count {
		return nil, fmt.Errorf("fake Nomad: %d of %d allocations of %s version %d run", len(running), count, jobID, version)
	}
	return running, nil
}

func (w *world) WaitStopped(ctx context.Context, ids []string) error {
	return w.fail(ctx, "wait-stopped")
}

func (w *world) WaitComplete(ctx context.Context, jobID, _ string) (string, error) {
	allocs, err := w.Allocations(ctx, jobID, false)
	if err != nil {
		return "", err
	}
	for _, a := range allocs {
		switch a.ClientStatus {
		case api.AllocClientStatusComplete:
			return a.ID, nil
		case api.AllocClientStatusFailed:
			return "", &nomad.JobFailedError{JobID: jobID, AllocID: a.ID, Event: "Terminated: Exit Code: 1"}
		}
	}
	return "", fmt.Errorf("fake Nomad: %s has no complete allocation", jobID)
}

// Services returns the registrations of instance short's gateway or node
// service: one per running allocation, at 10.0.0.<n> for client-<n>.
func (w *world) Services(ctx context.Context, name string) ([]*api.ServiceRegistration, error) {
	if err := w.fail(ctx, "services "+name); err != nil {
		return nil, err
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	short := shortOf(name)
	jobID := naming.NodesJobID(short)
	if name == naming.GatewayService(short) {
		jobID = naming.GatewaysJobID(short)
	}
	var out []*api.ServiceRegistration
	for _, a := range w.allocs[jobID] {
		if a.ClientStatus == api.AllocClientStatusRunning {
			out = append(out, &api.ServiceRegistration{ServiceName: name, Address: "10.0.0." + strings.TrimPrefix(a.NodeID, "client-"),
				NodeID: a.NodeID, AllocID: a.ID})
		}
	}
	return out, nil
}

// --- Nomad: exec ---------------------------------------------------------------

// Exec answers the pgBackRest commands execNode runs: check and info (one
// full base backup), stanza-create. A Patroni standby exits notLeaderCode.
func (w *world) Exec(ctx context.Context, allocID, task, script string) (string, error) {
	if err := w.fail(ctx, "exec"); err != nil {
		return "", err
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	var alloc *api.AllocationListStub
	for _, list := range w.allocs {
		for _, a := range list {
			if a.ID == allocID && a.ClientStatus == api.AllocClientStatusRunning {
				alloc = a
			}
		}
	}
	if alloc == nil {
		return "", fmt.Errorf("fake Nomad: no running allocation %s", allocID)
	}
	short := shortOf(alloc.JobID)
	if w.patroniJob(short) && w.leaderOf(short) != alloc.TaskGroup {
		return "", &ExecError{Code: 75, Stderr: "not the Patroni leader"} // leaderOnly's exit code on a standby (backup/pgbackrest.go)
	}
	switch {
	case strings.Contains(script, " check; ") && strings.Contains(script, " info"):
		w.record("pgbackrest check+info on %s", alloc.TaskGroup)
		return `[{"backup":[{"label":"20261116-020000F","type":"full","timestamp":{"start":1763258400,"stop":1763258409}}]}]`, nil
	case strings.Contains(script, "stanza-create"):
		w.record("pgbackrest stanza-create on %s", alloc.TaskGroup)
		return "", nil
	}
	return "", fmt.Errorf("fake Nomad: no answer to the script %q", script)
}

func (w *world) RestartTask(ctx context.Context, allocID, task string) error {
	return w.act(ctx, "restart "+task+" of "+allocID, func() {})
}

func (w *world) TaskLog(context.Context, string, string, string, int) ([]byte, error) {
	return nil, errors.New("fake Nomad: no task logs")
}

// --- Nomad: Variables ----------------------------------------------------------

func (w *world) EnsureVariable(ctx context.Context, path string, initial map[string]string) (map[string]string, error) {
	if err := w.fail(ctx, "ensure-variable "+path); err != nil {
		return nil, err
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	if items, ok := w.vars[path]; ok {
		for k, v := range initial { // nomad.Cluster adds the items it lacks
			if _, ok := items[k]; !ok {
				items[k] = v
			}
		}
		return maps.Clone(items), nil
	}
	w.vars[path] = maps.Clone(initial)
	return maps.Clone(initial), nil
}

// UpdateVariable is check-and-set in one step (no other writer here).
func (w *world) UpdateVariable(ctx context.Context, path string, change func(api.VariableItems) bool) (items api.VariableItems, err error) {
	if aerr := w.act(ctx, "update-variable "+path, func() {
		if items, err = w.variable(path); err == nil && change(items) {
			w.vars[path] = maps.Clone(items)
		}
	}); aerr != nil {
		return nil, aerr
	}
	return items, err
}

func (w *world) Variable(ctx context.Context, path string) (items map[string]string, err error) {
	if aerr := w.act(ctx, "variable "+path, func() { items, err = w.variable(path) }); aerr != nil {
		return nil, aerr
	}
	return items, err
}

// variable returns a copy of the items at path; w.mu held.
func (w *world) variable(path string) (map[string]string, error) {
	items, ok := w.vars[path]
	if !ok {
		return nil, fmt.Errorf("read secret %s from Nomad: %w", path, api.ErrVariablePathNotFound)
	}
	return maps.Clone(items), nil
}

func (w *world) PutVariable(ctx context.Context, path string, items map[string]string) error {
	return w.act(ctx, "put-variable "+path, func() {
		w.vars[path] = maps.Clone(items)
	})
}

func (w *world) DeleteVariable(ctx context.Context, path string) error {
	return w.act(ctx, "delete-variable "+path, func() {
		delete(w.vars, path)
	})
}

func (w *world) DeleteVariablesUnder(ctx context.Context, prefix string) error {
	return w.act(ctx, "delete-variables "+prefix, func() {
		for path := range w.vars {
			if strings.HasPrefix(path, prefix) {
				delete(w.vars, path)
			}
		}
	})
}

// --- Patroni ---------------------------------------------------------------

// leaderOf returns the leader of instance short's cluster, electing the
// first running member when there is none (a fresh cluster, keys deleted).
func (w *world) leaderOf(short string) string {
	live := w.liveGroups(short)
	if !slices.Contains(live, w.leader[short]) {
		w.leader[short] = ""
		if len(live) > 0 {
			w.leader[short] = live[0]
			w.sync[short] = true // the node job's bootstrap settings
		}
	}
	return w.leader[short]
}

// syncStandby returns the synchronous standby: the first running member
// that does not lead, when synchronous_mode is on.
func (w *world) syncStandby(short string) string {
	leader := w.leaderOf(short)
	for _, g := range w.liveGroups(short) {
		if g != leader && w.sync[short] {
			return g
		}
	}
	return ""
}

func (w *world) members(short string) []Member {
	if !w.patroniJob(short) {
		return nil
	}
	leader, syncStandby := w.leaderOf(short), w.syncStandby(short)
	var out []Member
	for _, g := range w.liveGroups(short) {
		m := Member{Name: g, Role: "replica", State: "streaming"}
		switch g {
		case leader:
			m.Role, m.State = "leader", "running"
		case syncStandby:
			m.Role = "sync_standby"
		}
		out = append(out, m)
	}
	return out
}

// fakePatroni is the Patroni REST API of one instance's cluster in world w.
type fakePatroni struct {
	w     *world
	short string
}

func (f *fakePatroni) Members(ctx context.Context) ([]Member, error) {
	if err := f.w.fail(ctx, "patroni members"); err != nil {
		return nil, err
	}
	f.w.mu.Lock()
	defer f.w.mu.Unlock()
	return f.w.members(f.short), nil
}

// WaitMembers: members change only through the broker's own calls here, so
// a condition false now stays false.
func (f *fakePatroni) WaitMembers(ctx context.Context, what string, ok func([]Member) bool, _ func(string)) ([]Member, error) {
	members, err := f.Members(ctx)
	if err != nil {
		return nil, err
	}
	if !ok(members) {
		return nil, fmt.Errorf("fake Patroni: %s: never true of %s", what, patroni.DescribeMembers(members))
	}
	return members, nil
}

func (f *fakePatroni) SetParameters(ctx context.Context, params map[string]any) error {
	return f.w.act(ctx, "patroni parameters", func() {
		f.w.params[f.short] = params
		f.w.record("parameters %v", params)
	})
}

func (f *fakePatroni) SetSynchronousMode(ctx context.Context, on bool) error {
	return f.w.act(ctx, "patroni synchronous mode", func() {
		f.w.sync[f.short] = on
		f.w.record("sync %s", map[bool]string{true: "on", false: "off"}[on])
	})
}

func (f *fakePatroni) RestoreSynchronousMode(ctx context.Context, want int, progress func(string)) error {
	if err := f.SetSynchronousMode(ctx, true); err != nil {
		return err
	}
	_, err := f.WaitMembers(ctx, "a synchronous standby", patroni.Healthy(want), progress)
	return err
}

// SwitchoverTo switches over as Patroni would (patroni.Client.SwitchoverTo):
// nothing when name leads, else only to a candidate CanLead accepts, after
// prepare.
func (f *fakePatroni) SwitchoverTo(ctx context.Context, name string, prepare func(context.Context) error, _ func(string)) error {
	members, err := f.Members(ctx)
	if err != nil {
		return err
	}
	f.w.mu.Lock()
	sync := f.w.sync[f.short]
	f.w.mu.Unlock()
	if !patroni.CanLead(name, sync)(members) {
		return fmt.Errorf("fake Patroni: 412: %s is no candidate among %s", name, patroni.DescribeMembers(members))
	}
	leader := patroni.Leader(members)
	if leader == name {
		return nil
	}
	if err := prepare(ctx); err != nil {
		return err
	}
	return f.w.act(ctx, "patroni switchover", func() {
		f.w.leader[f.short] = name
		f.w.record("switchover %s -> %s", leader, name)
	})
}

// fakeEtcd is etcd: deleting a cluster's keys forgets its leader and its
// user.
type fakeEtcd struct{ w *world }

func (d fakeEtcd) EnsureUser(ctx context.Context, scope, password string) error {
	return d.w.act(ctx, "etcd user", func() {
		if d.w.etcd[scope] != password {
			d.w.record("etcd-user %s", scope)
		}
		d.w.etcd[scope] = password
	})
}

func (d fakeEtcd) DeleteCluster(ctx context.Context, scope string) error {
	return d.w.act(ctx, "etcd delete", func() {
		d.w.record("etcd-delete %s", scope)
		delete(d.w.leader, strings.TrimPrefix(scope, "pg-"))
		delete(d.w.etcd, scope) // patroni.DCS deletes the user and role after the keys
	})
}

// --- PostgreSQL ----------------------------------------------------------------

// fakeAdmin is the superuser connection to instance short's leader (through
// its gateway) in world w. It serves the server certificate of the node
// Variable, answers every query at once, and records the statements that
// change something.
type fakeAdmin struct {
	AdminConn // what the orchestration does not ask (users, extensions, dumps) panics
	w         *world
	short     string
	password  string
}

// login counts call (world.fail) and checks the password against the
// node Variable's admin_password, as PostgreSQL would.
func (a *fakeAdmin) login(ctx context.Context, call string) error {
	var err error
	if aerr := a.w.act(ctx, call, func() {
		if a.password == "" || a.password != a.w.vars[naming.NodesSecretPath(a.short)]["admin_password"] {
			err = errors.New("fake PostgreSQL: password authentication failed for the admin user")
		}
	}); aerr != nil {
		return aerr
	}
	return err
}

// do runs a statement that changes something and records it.
func (a *fakeAdmin) do(ctx context.Context, format string, args ...any) error {
	if err := a.login(ctx, "sql "+format); err != nil {
		return err
	}
	a.w.mu.Lock()
	defer a.w.mu.Unlock()
	a.w.record("sql "+format, args...)
	return nil
}

func (a *fakeAdmin) Ping(ctx context.Context) error { return a.login(ctx, "sql ping") }

func (a *fakeAdmin) ServerCertificate(ctx context.Context) (*x509.Certificate, error) {
	items, err := a.w.Variable(ctx, naming.NodesSecretPath(a.short))
	if err != nil {
		return nil, err
	}
	return pki.ParseCertificate([]byte(items[servercert.ItemServerCertificate]))
}

func (a *fakeAdmin) HBA(ctx context.Context) (pgadmin.HBAState, error) {
	return pgadmin.HBAState{}, a.w.fail(ctx, "sql hba")
}
func (a *fakeAdmin) InRecovery(ctx context.Context) (bool, error) {
	return false, a.login(ctx, "sql in-recovery")
}

func (a *fakeAdmin) HasDataFile(ctx context.Context, name string) (bool, error) {
	if err := a.login(ctx, "sql has-data-file"); err != nil {
		return false, err
	}
	a.w.mu.Lock()
	defer a.w.mu.Unlock()
	return a.w.marker[a.short] != "" && name == "pgbroker-pitr-"+a.w.marker[a.short], nil
}

func (a *fakeAdmin) Checkpoint(ctx context.Context) error { return a.do(ctx, "CHECKPOINT") }

// Standbys is the leader's pg_stat_replication: every other running member
// streams, the synchronous standby "sync", the others "async".
func (a *fakeAdmin) Standbys(ctx context.Context) ([]pgadmin.Standby, error) {
	if err := a.login(ctx, "sql standbys"); err != nil {
		return nil, err
	}
	a.w.mu.Lock()
	defer a.w.mu.Unlock()
	var out []pgadmin.Standby
	for _, m := range a.w.members(a.short) {
		if m.Role == "leader" {
			continue
		}
		s := pgadmin.Standby{Name: m.Name, State: "streaming", SyncState: "async"}
		if m.Role == "sync_standby" {
			s.SyncState = "sync"
		}
		out = append(out, s)
	}
	return out, nil
}

func (a *fakeAdmin) EnsureReplicationRole(ctx context.Context, _ string) error {
	return a.do(ctx, "replication-role")
}
func (a *fakeAdmin) EnsureDatabase(ctx context.Context, n pgadmin.Names) error {
	return a.do(ctx, "create-database %s", n.Database)
}
func (a *fakeAdmin) EnsureLoginRole(ctx context.Context, _ pgadmin.Names, role, _ string, _ bool) error {
	return a.do(ctx, "login-role %s", role)
}
func (a *fakeAdmin) DropLoginRole(ctx context.Context, _ pgadmin.Names, role string) error {
	return a.do(ctx, "drop-role %s", role)
}

// --- crashes ---------------------------------------------------------------------

// crashed is the panic value of a run stopped at a crash point.
type crashed struct{ point string }

// runUntil runs op, stopping it the way a SIGKILL would at the stopAt-th
// crash point it passes (counting from 0; -1 runs it to the end), and
// returns the points it passed (the one it stopped at last) and op's error
// (nil when stopped).
func runUntil(stopAt int, op func() error) (points []string, err error) {
	restore := crashpoint.Trap(func(name string) {
		points = append(points, name)
		if len(points)-1 == stopAt {
			panic(crashed{name})
		}
	})
	defer restore()
	defer func() {
		if r := recover(); r != nil {
			if _, ok := r.(crashed); !ok {
				panic(r)
			}
		}
	}()
	err = op()
	return points, err
}

// state renders what an operation leaves behind: every job's version,
// Meta and task groups, the running allocations and their clients, the
// Variables' item names (values are random per run), Patroni's leader and
// synchronous mode, the restore in node-0's data.
func (w *world) state() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	var b strings.Builder
	for _, id := range slices.Sorted(maps.Keys(w.jobs)) {
		j := w.jobs[id]
		fmt.Fprintf(&b, "job %s v%d stop=%v meta=%v\n", id, *j.Version, j.Stop != nil && *j.Stop, j.Meta)
		for _, g := range j.TaskGroups {
			def := strings.ReplaceAll(groupDef(g), w.vars["pgbroker/test/ca"]["certificate"], "<broker CA>") // one CA per world
			fmt.Fprintf(&b, "  group %s x%d %s\n", *g.Name, *g.Count, def)
		}
		for _, a := range w.allocs[id] {
			if a.ClientStatus == api.AllocClientStatusRunning {
				fmt.Fprintf(&b, "  running %s v%d on %s\n", a.Name, a.JobVersion, a.NodeID)
			}
		}
	}
	for _, path := range slices.Sorted(maps.Keys(w.vars)) {
		fmt.Fprintf(&b, "variable %s %v\n", path, slices.Sorted(maps.Keys(w.vars[path])))
	}
	for _, short := range slices.Sorted(maps.Keys(w.leader)) {
		if w.patroniJob(short) {
			fmt.Fprintf(&b, "patroni %s leader=%s sync=%v parameters=%v\n", short, w.leaderOf(short), w.sync[short], w.params[short])
		}
	}
	if len(w.etcd) > 0 {
		fmt.Fprintf(&b, "etcd users %v\n", slices.Sorted(maps.Keys(w.etcd)))
	}
	fmt.Fprintf(&b, "data directories %v\n", slices.Sorted(maps.Keys(w.data)))
	fmt.Fprintf(&b, "restored %v\n", w.marker)
	return b.String()
}
