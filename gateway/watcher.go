package gateway

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/hashicorp/nomad/api"

	"github.com/pgbroker/pgbroker/naming"
	"github.com/pgbroker/pgbroker/nomad"
)

// Nomad is what a Watcher reads and does in Nomad (*nomad.Cluster).
type Nomad interface {
	JobIDs(ctx context.Context, prefix string) (map[string]nomad.Owner, error)
	Allocations(ctx context.Context, jobID string, all bool) ([]*api.AllocationListStub, error)
	Services(ctx context.Context, name string) ([]*api.ServiceRegistration, error)
	ReadFile(ctx context.Context, allocID, path string, limit int) ([]byte, error)
	RestartTask(ctx context.Context, allocID, task string) error
}

// Config tunes a Watcher; zero values take the defaults.
type Config struct {
	// Deployment is the identity of this broker deployment
	// (store.DeploymentID): only gateway jobs whose Meta carries it are
	// checked.
	Deployment string
	// Settle is how long a gateway may stay out of step before it is
	// restarted (default 5s; the template re-renders within 1 s of a
	// change, gateways.nomad.hcl).
	Settle time.Duration
	// RestartEvery is the least time between two restarts of one
	// gateway allocation (default 1m), so a Nomad that never renders the
	// change is not restarted in a loop.
	RestartEvery time.Duration
}

// Watcher finds gateways whose rendered configuration fell behind the node
// service and restarts them. Safe for concurrent use.
type Watcher struct {
	nomad Nomad
	cfg   Config
	log   *slog.Logger
	now   func() time.Time

	mu        sync.Mutex
	behind    map[string]behind    // by gateway allocation id
	restarted map[string]time.Time // by gateway allocation id
}

// behind is a gateway seen out of step: since when, and with which
// registrations (a change of those starts the wait again).
type behind struct {
	since time.Time
	want  string
}

// New returns a Watcher over Nomad n.
func New(n Nomad, cfg Config, log *slog.Logger) *Watcher {
	if cfg.Settle <= 0 {
		cfg.Settle = 5 * time.Second
	}
	if cfg.RestartEvery <= 0 {
		cfg.RestartEvery = time.Minute
	}
	return &Watcher{nomad: n, cfg: cfg, log: log, now: time.Now,
		behind: map[string]behind{}, restarted: map[string]time.Time{}}
}

// Run checks every gateway job of the deployment (CheckAll) every interval
// until ctx ends. Errors are logged; the next round tries again.
func (w *Watcher) Run(ctx context.Context, every time.Duration) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		if err := w.CheckAll(ctx); err != nil && ctx.Err() == nil {
			w.log.Warn("check the gateways", slog.String("error", err.Error()))
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// CheckAll runs Check on each gateway job of the deployment
// (pg-<short>-gateways with Meta pgbroker_deployment = Config.Deployment).
// Errors: Nomad could not list the jobs, or the first error of a Check
// (the other instances are checked all the same).
func (w *Watcher) CheckAll(ctx context.Context) error {
	jobs, err := w.nomad.JobIDs(ctx, "pg-")
	if err != nil {
		return err
	}
	var first error
	for id, owner := range jobs {
		short, ok := strings.CutSuffix(strings.TrimPrefix(id, "pg-"), "-gateways")
		if !ok || owner.Deployment != w.cfg.Deployment || naming.GatewaysJobID(short) != id {
			continue
		}
		if _, err := w.Check(ctx, short); err != nil && first == nil {
			first = err
		}
	}
	w.prune()
	return first
}

// Check compares what each running gateway of instance short loaded with
// the node service's registrations and restarts the HAProxy task of a gateway out of
// step for Config.Settle (at most once per Config.RestartEvery). It returns
// the allocation ids it restarted. A gateway whose configuration cannot be
// read yet (its task is starting) is skipped. Errors: Nomad did not answer.
func (w *Watcher) Check(ctx context.Context, short string) ([]string, error) {
	allocs, err := w.nomad.Allocations(ctx, naming.GatewaysJobID(short), false)
	if err != nil {
		return nil, err
	}
	regs, err := w.nomad.Services(ctx, naming.NodeService(short))
	if err != nil {
		return nil, err
	}
	want := Registered(regs)
	var restarted []string
	for _, a := range allocs {
		if a.ClientStatus != api.AllocClientStatusRunning || a.TaskStates[Task] == nil || a.TaskStates[Task].State != "running" {
			continue
		}
		cfg, err := w.nomad.ReadFile(ctx, a.ID, LoadedPath, 1<<20)
		if err != nil {
			if cfg, err = w.nomad.ReadFile(ctx, a.ID, RenderedPath, 1<<20); err != nil {
				continue // not rendered yet, or gone
			}
		}
		have := Servers(cfg)
		if !w.outOfStep(a.ID, have, want) {
			continue
		}
		w.log.Warn("a gateway's configuration fell behind the node service: restarting its task to render it afresh",
			slog.String("instance", short), slog.String("alloc_id", a.ID),
			slog.Any("rendered", have), slog.Any("registered", want))
		if err := w.nomad.RestartTask(ctx, a.ID, Task); err != nil {
			return restarted, fmt.Errorf("restart gateway %s of %s: %w", a.ID, short, err)
		}
		restarted = append(restarted, a.ID)
	}
	return restarted, nil
}

// outOfStep records what gateway allocID rendered against the registrations
// and reports whether it is time to restart it: out of step, with the same
// registrations, for Settle, and not restarted within RestartEvery.
func (w *Watcher) outOfStep(allocID string, have, want []string) bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	if slices.Equal(have, want) {
		delete(w.behind, allocID)
		return false
	}
	now, key := w.now(), strings.Join(want, ",")
	b, seen := w.behind[allocID]
	if !seen || b.want != key {
		w.behind[allocID] = behind{since: now, want: key}
		return false
	}
	if now.Sub(b.since) < w.cfg.Settle || now.Sub(w.restarted[allocID]) < w.cfg.RestartEvery {
		return false
	}
	delete(w.behind, allocID)
	w.restarted[allocID] = now
	return true
}

// prune forgets restarts older than RestartEvery and gateways seen out of
// step more than an hour ago (allocations since gone).
func (w *Watcher) prune() {
	w.mu.Lock()
	defer w.mu.Unlock()
	now := w.now()
	for id, t := range w.restarted {
		if now.Sub(t) >= w.cfg.RestartEvery {
			delete(w.restarted, id)
		}
	}
	for id, b := range w.behind {
		if now.Sub(b.since) > time.Hour {
			delete(w.behind, id)
		}
	}
}
