package backup

import (
	"context"
	"fmt"
	"maps"
	"sync"

	"github.com/hashicorp/nomad/api"

	"github.com/pgbroker/pgbroker/nomad"
)

// fakeNomad is an in-memory Nomad: Variables, registered jobs, and batch
// jobs that end as outcome says.
type fakeNomad struct {
	mu       sync.Mutex
	vars     map[string]map[string]string
	jobs     map[string]*api.Job
	parsed   map[string]map[string]any // the variables each job was parsed with
	outcome  func(jobID string) error  // WaitComplete's error; nil: completed
	logs     map[string]string         // task log by "<task>.<stream>"
	services map[string][]*api.ServiceRegistration
	allocs   []*api.AllocationListStub
	exec     func(allocID, script string) (string, error)
	purged   []string
	register int // Register calls

	waitedStopped []string // the allocations WaitStopped was asked for
}

func newFakeNomad() *fakeNomad {
	return &fakeNomad{vars: map[string]map[string]string{}, jobs: map[string]*api.Job{}, parsed: map[string]map[string]any{},
		logs: map[string]string{}, services: map[string][]*api.ServiceRegistration{}}
}

func notFound(what string) error {
	return fmt.Errorf("%s: Unexpected response code: 404 (not found)", what)
}

func (f *fakeNomad) Parse(src, jobID string, vars map[string]any) (*api.Job, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.parsed[jobID] = maps.Clone(vars)
	return &api.Job{ID: &jobID, Meta: map[string]string{}}, nil
}

func (f *fakeNomad) Register(_ context.Context, job *api.Job) (uint64, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.register++
	f.jobs[*job.ID] = job
	return 1, nil
}

func (f *fakeNomad) Job(_ context.Context, jobID string) (*api.Job, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if j, ok := f.jobs[jobID]; ok {
		return j, nil
	}
	// Nomad's 404 (api.UnexpectedResponseError) cannot be made outside its
	// package: an unknown job reads as a stopped one, which runBatch
	// registers the same way.
	stopped := true
	return &api.Job{ID: &jobID, Stop: &stopped}, nil
}

func (f *fakeNomad) Purge(_ context.Context, jobID string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	delete(f.jobs, jobID)
	f.purged = append(f.purged, jobID)
	return nil
}

func (f *fakeNomad) WaitComplete(_ context.Context, jobID, task string) (string, error) {
	if f.outcome != nil {
		if err := f.outcome(jobID); err != nil {
			return "", err
		}
	}
	return "alloc-" + jobID, nil
}

func (f *fakeNomad) WaitStopped(_ context.Context, ids []string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.waitedStopped = append(f.waitedStopped, ids...)
	return nil
}

func (f *fakeNomad) TaskLog(_ context.Context, allocID, task, stream string, limit int) ([]byte, error) {
	out, ok := f.logs[task+"."+stream]
	if !ok {
		return nil, notFound("log of " + allocID)
	}
	if len(out) > limit {
		out = out[len(out)-limit:]
	}
	return []byte(out), nil
}

func (f *fakeNomad) Allocations(context.Context, string, bool) ([]*api.AllocationListStub, error) {
	return f.allocs, nil
}

func (f *fakeNomad) Allocation(_ context.Context, allocID string) (*api.Allocation, error) {
	return &api.Allocation{ID: allocID, Name: "pg-abc-nodes.node-1[0]"}, nil
}

func (f *fakeNomad) Exec(_ context.Context, allocID, _, script string) (string, error) {
	return f.exec(allocID, script)
}

func (f *fakeNomad) Services(_ context.Context, name string) ([]*api.ServiceRegistration, error) {
	return f.services[name], nil
}

func (f *fakeNomad) Variable(_ context.Context, path string) (map[string]string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	v, ok := f.vars[path]
	if !ok {
		return nil, notFound("variable " + path)
	}
	return maps.Clone(v), nil
}

func (f *fakeNomad) PutVariable(_ context.Context, path string, items map[string]string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.vars[path] = maps.Clone(items)
	return nil
}

func (f *fakeNomad) EnsureVariable(_ context.Context, path string, initial map[string]string) (map[string]string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if _, ok := f.vars[path]; !ok {
		f.vars[path] = maps.Clone(initial)
	}
	return maps.Clone(f.vars[path]), nil
}

func (f *fakeNomad) UpdateVariable(_ context.Context, path string, change func(api.VariableItems) bool) (api.VariableItems, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	items, ok := f.vars[path]
	if !ok {
		return nil, notFound("variable " + path)
	}
	next := maps.Clone(items)
	if change(next) {
		f.vars[path] = next
	}
	return maps.Clone(f.vars[path]), nil
}

func (f *fakeNomad) DeleteVariable(_ context.Context, path string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	delete(f.vars, path)
	return nil
}

var _ Nomad = (*fakeNomad)(nil)
var _ Nomad = (*nomad.Cluster)(nil)

func nomadJob(id string) *api.Job { return &api.Job{ID: &id, Meta: map[string]string{}} }
