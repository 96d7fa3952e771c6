package reconcile

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/nomad/api"

	"github.com/pgbroker/pgbroker/catalog"
	"github.com/pgbroker/pgbroker/naming"
	"github.com/pgbroker/pgbroker/provisioner"
	"github.com/pgbroker/pgbroker/servercert"
	"github.com/pgbroker/pgbroker/store"
)

// world is the state database and Nomad as the loop sees them, in memory.
type world struct {
	mu           sync.Mutex
	instances    []store.Instance
	latest       map[string]store.Operation // instance id → latest operation
	statuses     map[string][]string        // instance id → every status recorded, in order
	jobs         map[string]bool            // registered job ids
	vars         map[string]bool            // Variable paths in Nomad
	copies       map[string]bool            // paths with a sealed copy
	calls        []string                   // restore <path>, provision <short> node=<id> port=<n>
	lockHeld     bool                       // another broker holds the reconcile lock
	repairBusy   bool                       // an operation is being started: TryRepair fails
	onRepairLock func()                     // runs when TryRepair succeeds (before the loop looks again)
	provisionErr error
	seen         []map[string]string // at each Provision, every instance's recorded status by id
	gatewayCert  string              // PEM of the nodes Variable's server certificate; "" none

	// Drift: what the registered jobs hold beyond the broker's definition.
	drifted     map[string]string // job id → a field edited by hand (Resources/MemoryMB), so its plan has a diff
	gatewayPin  string            // client the registered gateway job's node_id constraint names; "" none
	nodePin     string            // likewise for the node job (a provision of a single node pins it)
	pitrRestore bool              // the registered node job carries Meta pgbroker_pitr_restore
	unplaceable bool              // plans of drifted jobs cannot place them
	planned     []string          // plan <job id> [pin=<client>] [clients=<a,b>]

	// Business: where the nodes run and what the node job pins.
	nodeAllocs []*api.AllocationListStub // the node jobs' allocations Nomad lists (nil: each registered job's groups running)
	down       map[string]bool           // "<job id>/<task group>" whose allocations are not running
	groupPins  []string                  // clients the registered node job's task groups are pinned to, by index; nil none
}

func newWorld() *world {
	return &world{latest: map[string]store.Operation{}, statuses: map[string][]string{},
		jobs: map[string]bool{}, vars: map[string]bool{}, copies: map[string]bool{}, drifted: map[string]string{}, down: map[string]bool{}}
}

// healthy adds a provisioned instance of plan whose jobs and Variables are
// all in Nomad, with a sealed copy of each Variable; a single node's jobs
// are pinned as a provision pins them (node on client-a, gateway on
// client-b).
func (w *world) healthy(id, plan string) store.Instance {
	inst := store.Instance{ID: id, ShortID: naming.ShortID(id), PlanID: plan, GatewayPort: 31007, NodeID: "client-a", Status: StatusRunning}
	if plan != business {
		w.nodePin, w.gatewayPin = "client-a", "client-b"
	}
	w.instances = append(w.instances, inst)
	w.latest[id] = store.Operation{ID: "op-" + id, InstanceID: id, Kind: store.KindProvision, State: store.Succeeded}
	w.jobs[naming.NodesJobID(inst.ShortID)] = true
	w.jobs[naming.GatewaysJobID(inst.ShortID)] = true
	for _, p := range []string{naming.NodesSecretPath(inst.ShortID), "pgbroker/instances/" + inst.ShortID + "/bindings/b1"} {
		w.vars[p], w.copies[p] = true, true
	}
	return inst
}

// lose makes Nomad forget every job and Variable of inst.
func (w *world) lose(inst store.Instance) {
	delete(w.jobs, naming.NodesJobID(inst.ShortID))
	delete(w.jobs, naming.GatewaysJobID(inst.ShortID))
	for p := range w.vars {
		if strings.Contains(p, inst.ShortID) {
			delete(w.vars, p)
		}
	}
}

func (w *world) reconciler(t *testing.T) *Reconciler {
	t.Helper()
	cat, err := catalog.Default()
	if err != nil {
		t.Fatal(err)
	}
	return New(Deps{Instances: w, Lock: w.tryLock, Nomad: w, Copies: copiesOf{w}, Restorer: w, Provisioner: w, Plans: cat},
		time.Minute, slog.New(slog.NewTextHandler(io.Discard, nil)))
}

func (w *world) LiveInstances(context.Context) ([]store.Instance, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return slices.Clone(w.instances), nil
}

func (w *world) LatestOperation(_ context.Context, id string) (store.Operation, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	op, ok := w.latest[id]
	if !ok {
		return store.Operation{}, store.ErrNotFound
	}
	return op, nil
}

func (w *world) SetStatus(_ context.Context, id, status string) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.statuses[id] = append(w.statuses[id], status)
	for i := range w.instances {
		if w.instances[i].ID == id {
			w.instances[i].Status = status
		}
	}
	return nil
}

func (w *world) SetNodeClients(_ context.Context, id string, clients []string) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	for i := range w.instances {
		if w.instances[i].ID == id {
			w.instances[i].NodeClients = slices.Clone(clients)
		}
	}
	return nil
}

// running makes allocation stubs of node groups node-0, node-1... running
// on clients, in order.
func running(clients ...string) []*api.AllocationListStub {
	var out []*api.AllocationListStub
	for i, c := range clients {
		out = append(out, &api.AllocationListStub{ID: "alloc-" + strconv.Itoa(i), TaskGroup: naming.Member(i), NodeID: c,
			DesiredStatus: api.AllocDesiredStatusRun, ClientStatus: api.AllocClientStatusRunning})
	}
	return out
}

func (w *world) tryLock(context.Context) (Lock, bool, error) {
	if w.lockHeld {
		return nil, false, nil
	}
	return w, true, nil
}

func (w *world) TryRepair(context.Context, string) (bool, error) {
	if w.repairBusy {
		return false, nil
	}
	if w.onRepairLock != nil {
		w.onRepairLock()
	}
	return true, nil
}

func (w *world) EndRepair(context.Context, string) error { return nil }
func (w *world) Release()                                {}

// Job: Nomad's 404 cannot be made outside its package, so a job Nomad
// lacks reads as a stopped one (the loop treats both alike).
func (w *world) Job(_ context.Context, jobID string) (*api.Job, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	stopped := !w.jobs[jobID]
	job := &api.Job{ID: &jobID, Stop: &stopped, Meta: map[string]string{}}
	if strings.HasSuffix(jobID, "-gateways") && w.gatewayPin != "" {
		job.Constraints = []*api.Constraint{api.NewConstraint("${node.unique.id}", "=", w.gatewayPin)}
	}
	if strings.HasSuffix(jobID, "-nodes") && w.nodePin != "" {
		job.Constraints = []*api.Constraint{api.NewConstraint("${node.unique.id}", "=", w.nodePin)}
	}
	if strings.HasSuffix(jobID, "-nodes") {
		job.TaskGroups = groupsPinned(w.groupPins)
	}
	if strings.HasSuffix(jobID, "-nodes") && w.pitrRestore {
		job.Meta[naming.MetaPITRRestore] = "op-pitr"
	}
	return job, nil
}

// Plan has a diff when the job was edited by hand (w.drifted) or when
// job's pin is not the registered one's.
func (w *world) Plan(_ context.Context, job *api.Job) (*api.JobPlanResponse, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	pin := pinnedClient(job)
	call := "plan " + *job.ID
	if pin != "" {
		call += " pin=" + pin
	}
	pins := groupPinsOf(job)
	if len(pins) > 0 {
		call += " clients=" + strings.Join(pins, ",")
	}
	w.planned = append(w.planned, call)
	resp := &api.JobPlanResponse{Diff: &api.JobDiff{Type: "None", ID: *job.ID}}
	if field, ok := w.drifted[*job.ID]; ok {
		resp.Diff.Type = "Edited"
		resp.Diff.TaskGroups = []*api.TaskGroupDiff{{Type: "Edited", Name: "node-0", Tasks: []*api.TaskDiff{{Type: "Edited", Name: "postgres",
			Objects: []*api.ObjectDiff{{Type: "Edited", Name: "Resources", Fields: []*api.FieldDiff{{Type: "Edited", Name: field, Old: "1024", New: "512"}}}}}}}}
		if w.unplaceable {
			resp.FailedTGAllocs = map[string]*api.AllocationMetric{"node-0": {}}
		}
	}
	if (strings.HasSuffix(*job.ID, "-gateways") && pin != w.gatewayPin) || (strings.HasSuffix(*job.ID, "-nodes") && (pin != w.nodePin || !slices.Equal(pins, w.groupPins))) {
		resp.Diff.Type = "Edited"
		resp.Diff.Objects = []*api.ObjectDiff{{Type: "Added", Name: "Constraint"}}
	}
	return resp, nil
}

// RenderJobs renders the two jobs by id, the node job pinned to in.NodeID
// (a single node) or its groups to in.NodeClients (Business), the gateway
// job to in.GatewayNodeID.
func (w *world) RenderJobs(in provisioner.Instance, size provisioner.Size) (*api.Job, *api.Job, error) {
	nodes, gateways := naming.NodesJobID(in.ShortID), naming.GatewaysJobID(in.ShortID)
	if size.HA() {
		job := pinned(nodes, "")
		job.TaskGroups = groupsPinned(in.NodeClients)
		return job, pinned(gateways, ""), nil
	}
	return pinned(nodes, in.NodeID), pinned(gateways, in.GatewayNodeID), nil
}

// groupsPinned are task groups node-<i> each pinned to clients[i].
func groupsPinned(clients []string) []*api.TaskGroup {
	var out []*api.TaskGroup
	for i, c := range clients {
		g := api.NewTaskGroup(naming.Member(i), 1)
		g.Constraints = []*api.Constraint{api.NewConstraint("${node.unique.id}", "", c)}
		out = append(out, g)
	}
	return out
}

// groupPinsOf is the client each task group of job is pinned to.
func groupPinsOf(job *api.Job) []string {
	var out []string
	for _, g := range job.TaskGroups {
		for _, c := range g.Constraints {
			out = append(out, c.RTarget)
		}
	}
	return out
}

// pinned is a job jobID with a node_id constraint on client ("" none).
func pinned(jobID, client string) *api.Job {
	job := &api.Job{ID: &jobID}
	if client != "" {
		job.Constraints = []*api.Constraint{api.NewConstraint("${node.unique.id}", "=", client)}
	}
	return job
}

// Allocations lists, for a registered job, w.nodeAllocs (node jobs, when
// set), else one running allocation per node group on client-a, client-b…
// and two of the gateway group; a group in w.down is listed failed.
func (w *world) Allocations(_ context.Context, jobID string, _ bool) ([]*api.AllocationListStub, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if !w.jobs[jobID] {
		return nil, nil
	}
	var out []*api.AllocationListStub
	switch {
	case strings.HasSuffix(jobID, "-nodes") && w.nodeAllocs != nil:
		out = w.nodeAllocs
	case strings.HasSuffix(jobID, "-nodes"):
		out = running("client-a", "client-b")
	default:
		for i := range 2 {
			out = append(out, &api.AllocationListStub{ID: "gw-" + strconv.Itoa(i), TaskGroup: gatewayGroup, NodeID: "client-c",
				DesiredStatus: api.AllocDesiredStatusRun, ClientStatus: api.AllocClientStatusRunning})
		}
	}
	var listed []*api.AllocationListStub
	for _, a := range out {
		if w.down[jobID+"/"+a.TaskGroup] {
			failed := *a
			failed.ClientStatus = api.AllocClientStatusFailed
			a = &failed
		}
		listed = append(listed, a)
	}
	return listed, nil
}

func (w *world) WaitStopped(context.Context, []string) error { return nil }

// Variable gives the nodes Variable a server certificate naming
// w.gatewayAddr (none when it is "").
func (w *world) Variable(_ context.Context, path string) (map[string]string, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.gatewayCert == "" || !strings.HasPrefix(path, "nomad/jobs/") {
		return map[string]string{}, nil
	}
	return map[string]string{servercert.ItemServerCertificate: w.gatewayCert}, nil
}

func (w *world) NodeAddresses(context.Context) (map[string]string, error) {
	return map[string]string{"client-a": "10.0.0.1", "client-b": "10.0.0.2", "client-c": "10.0.0.3"}, nil
}

func (w *world) VariablePaths(_ context.Context, prefix string) ([]string, error) {
	return under(w, w.vars, prefix), nil
}

type copiesOf struct{ w *world }

func (c copiesOf) Paths(_ context.Context, prefix string) ([]string, error) {
	return under(c.w, c.w.copies, prefix), nil
}

func under(w *world, set map[string]bool, prefix string) []string {
	w.mu.Lock()
	defer w.mu.Unlock()
	var out []string
	for p := range set {
		if strings.HasPrefix(p, prefix) {
			out = append(out, p)
		}
	}
	slices.Sort(out)
	return out
}

func (w *world) Restore(_ context.Context, path string) (bool, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.calls = append(w.calls, "restore "+path)
	if !w.copies[path] {
		return false, errors.New("no sealed copy")
	}
	created := !w.vars[path]
	w.vars[path] = true
	return created, nil
}

func (w *world) Provision(_ context.Context, in provisioner.Instance, size provisioner.Size, _ provisioner.Progress) (provisioner.Placement, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	call := "provision " + in.ShortID + " node=" + in.NodeID + " port=" + strconv.Itoa(in.GatewayPort)
	if in.GatewayNodeID != "" {
		call += " gateway=" + in.GatewayNodeID
	}
	if len(in.NodeClients) > 0 {
		call += " clients=" + strings.Join(in.NodeClients, ",")
	}
	if size.HA() {
		call += " nodes=" + strconv.Itoa(size.Nodes)
	}
	w.calls = append(w.calls, call)
	now := map[string]string{}
	for _, inst := range w.instances {
		now[inst.ID] = inst.Status
	}
	w.seen = append(w.seen, now)
	if w.provisionErr != nil {
		return provisioner.Placement{}, w.provisionErr
	}
	w.jobs[naming.NodesJobID(in.ShortID)] = true
	w.jobs[naming.GatewaysJobID(in.ShortID)] = true
	delete(w.drifted, naming.NodesJobID(in.ShortID))
	delete(w.drifted, naming.GatewaysJobID(in.ShortID))
	if size.HA() {
		w.groupPins = slices.Clone(in.NodeClients)
		return provisioner.Placement{NodeID: in.NodeID, NodeClients: in.NodeClients}, nil
	}
	w.gatewayPin, w.nodePin = in.GatewayNodeID, in.NodeID
	return provisioner.Placement{NodeID: in.NodeID}, nil
}

// ChangePlan from a size to the same one is a Business roll: the node job
// back on the broker's definition, one node at a time.
func (w *world) ChangePlan(_ context.Context, in provisioner.Instance, from, to provisioner.Size, _ provisioner.Progress) (provisioner.Placement, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	call := "roll " + in.ShortID
	if from != to {
		call += " to another size"
	}
	if len(in.NodeClients) > 0 {
		call += " clients=" + strings.Join(in.NodeClients, ",")
	}
	w.calls = append(w.calls, call)
	if w.provisionErr != nil {
		return provisioner.Placement{}, w.provisionErr
	}
	delete(w.drifted, naming.NodesJobID(in.ShortID))
	w.groupPins = slices.Clone(in.NodeClients)
	return provisioner.Placement{NodeClients: in.NodeClients}, nil
}
