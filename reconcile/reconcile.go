// Package reconcile compares, for every live instance, what the state
// database says it is (the desired state) with what Nomad holds, and puts
// back what Nomad lost: the instance's Variables from their sealed copies,
// and its node and gateway jobs, registered again by the provisioner on the
// clients holding the data, with the same gateway port. A single node is
// pinned to its recorded client. A Business node is pinned to the client
// recorded for its own task group (node-<index>): the loop records each
// node's client whenever it sees the nodes run one per client, and a
// Business instance whose record is missing or doubtful (two nodes on one
// client, a client gone) is only reported ("degraded: ..."), never
// registered where a node could start on another node's data. Patroni then
// finds its cluster in etcd, and the most advanced node leads again. A job
// whose definition drifted from the broker's (edited by hand) is
// registered again the same way, a Business node job rolled one node at a
// time, standbys first; so is an instance whose status is still
// "repairing" (its broker stopped mid-repair). Drift is what Nomad's plan
// of the job the broker would register now says (nomad job plan -diff),
// not fields compared here: Nomad fills defaults and adds implied
// constraints, so only its own diff finds no difference in a job as the
// broker registered it, and it sees every field. An operation in progress
// always wins: the loop leaves its instance alone, and an instance under
// repair refuses new operations until it is back (store.ErrRepairInFlight).
// A registered job whose allocations stay down is Nomad's to restart: the
// loop only reports it ("degraded: node-0 not running"). Each pass records
// every instance's status before it runs any repair, so one repair that
// waits never leaves another instance's trouble unsaid.
package reconcile

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"time"

	"github.com/hashicorp/nomad/api"

	"github.com/pgbroker/pgbroker/catalog"
	"github.com/pgbroker/pgbroker/instances"
	"github.com/pgbroker/pgbroker/naming"
	"github.com/pgbroker/pgbroker/nomad"
	"github.com/pgbroker/pgbroker/provisioner"
	"github.com/pgbroker/pgbroker/store"
)

// Instances is the desired state (store.Instances).
type Instances interface {
	LiveInstances(ctx context.Context) ([]store.Instance, error)
	LatestOperation(ctx context.Context, instanceID string) (store.Operation, error)
	SetStatus(ctx context.Context, instanceID, status string) error
	SetNodeClients(ctx context.Context, instanceID string, clients []string) error
}

// Lock is the deployment's reconcile lock (store.ReconcileLock).
type Lock interface {
	TryRepair(ctx context.Context, instanceID string) (bool, error)
	EndRepair(ctx context.Context, instanceID string) error
	Release()
}

// TryLock takes the reconcile lock; ok is false while another broker holds
// it (store.Store.TryReconcileLock).
type TryLock func(ctx context.Context) (lock Lock, ok bool, err error)

// Nomad reads and plans jobs, reads their allocations, lists and reads
// Variables, and gives the clients' addresses (nomad.Cluster).
type Nomad interface {
	Job(ctx context.Context, jobID string) (*api.Job, error)
	Plan(ctx context.Context, job *api.Job) (*api.JobPlanResponse, error)
	Allocations(ctx context.Context, jobID string, all bool) ([]*api.AllocationListStub, error)
	WaitStopped(ctx context.Context, ids []string) error
	VariablePaths(ctx context.Context, prefix string) ([]string, error)
	Variable(ctx context.Context, path string) (map[string]string, error)
	NodeAddresses(ctx context.Context) (map[string]string, error)
}

// Copies lists the sealed copies of Variables (store.SealedVariables).
type Copies interface {
	Paths(ctx context.Context, prefix string) ([]string, error)
}

// Restorer creates a missing Variable from its sealed copy
// (sealedcopy.Variables).
type Restorer interface {
	Restore(ctx context.Context, path string) (bool, error)
}

// Provisioner renders an instance's jobs, registers them and waits until
// it answers (provisioner.Provisioner: Provision is idempotent, pinned to
// in.NodeID, or each Business node to in.NodeClients), and rolls a Business
// cluster's nodes onto the broker's definition one at a time, standbys
// first (ChangePlan from a size to the same size: tiers.Changer.Roll).
type Provisioner interface {
	RenderJobs(in provisioner.Instance, size provisioner.Size) (nodes, gateways *api.Job, err error)
	Provision(ctx context.Context, in provisioner.Instance, size provisioner.Size, progress provisioner.Progress) (provisioner.Placement, error)
	ChangePlan(ctx context.Context, in provisioner.Instance, from, to provisioner.Size, progress provisioner.Progress) (provisioner.Placement, error)
}

// Plans finds a plan by id (catalog.Catalog).
type Plans interface {
	Plan(planID string) (catalog.Service, catalog.Plan, bool)
}

// Deps are what the loop reads and acts through.
type Deps struct {
	Instances   Instances
	Lock        TryLock
	Nomad       Nomad
	Copies      Copies
	Restorer    Restorer
	Provisioner Provisioner
	Plans       Plans
}

// Reconciler runs passes of the loop. Safe for one Run at a time.
type Reconciler struct {
	d             Deps
	repairTimeout time.Duration
	log           *slog.Logger
	metrics       *Metrics
}

// New returns a Reconciler; one repair is given up after repairTimeout
// (retried at the next pass).
func New(d Deps, repairTimeout time.Duration, log *slog.Logger) *Reconciler {
	return &Reconciler{d: d, repairTimeout: repairTimeout, log: log.With(slog.String("component", "reconcile")), metrics: newMetrics()}
}

// Metrics returns the loop's Prometheus metrics.
func (r *Reconciler) Metrics() *Metrics { return r.metrics }

// Run makes a pass at once and then every interval, until ctx ends.
func (r *Reconciler) Run(ctx context.Context, interval time.Duration) {
	tick := time.NewTicker(interval)
	defer tick.Stop()
	for {
		if err := r.Pass(ctx); err != nil && ctx.Err() == nil {
			r.log.Warn("reconcile pass", slog.String("error", err.Error()))
		}
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}

// Pass looks at every live instance once, when this broker holds the
// reconcile lock (else it returns nil at once: another broker is at it).
// Errors: the state database's; an instance's own trouble is logged and
// recorded in its status, not returned.
func (r *Reconciler) Pass(ctx context.Context) error {
	lock, ok, err := r.d.Lock(ctx)
	if err != nil || !ok {
		return err
	}
	defer lock.Release()
	live, err := r.d.Instances.LiveInstances(ctx)
	if err != nil {
		return err
	}
	// First every instance is looked at and its status recorded, then the
	// repairs run: one instance whose repair waits (a client gone, say)
	// never leaves the others' status unsaid.
	degraded := 0
	var queue []pending
	for _, inst := range live {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		p, status, err := r.assess(ctx, inst)
		switch {
		case err != nil:
			r.log.Warn("reconcile instance", slog.String("instance_id", inst.ID), slog.String("error", err.Error()))
		case p != nil:
			queue = append(queue, *p)
		case isDegraded(status):
			degraded++
		}
	}
	// Those behind the first say so now, not once their turn comes.
	for _, p := range queue[min(1, len(queue)):] {
		if p.f.Interrupted {
			continue // keeps "repairing: ...": a broker dying now leaves it to finish
		}
		if err := r.d.Instances.SetStatus(ctx, p.inst.ID, "degraded: "+p.f.String()+statusQueued); err != nil {
			return err
		}
	}
	for _, p := range queue {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if status, err := r.perform(ctx, lock, p); err != nil {
			r.log.Warn("reconcile instance", slog.String("instance_id", p.inst.ID), slog.String("error", err.Error()))
		} else if isDegraded(status) {
			degraded++
		}
	}
	r.metrics.degraded.Set(float64(degraded))
	return nil
}

// pending is a repair a pass found to do.
type pending struct {
	inst   store.Instance
	plan   catalog.Plan
	action Action
	f      Finding
	live   registered
	opID   string // the instance's latest operation when it was looked at
}

// statusQueued follows "degraded: <finding>" while an instance waits for
// its repair behind another's in this pass (not "repairing: ...", which
// says a broker began the repair: one that dies leaves it to finish). An
// operation started meanwhile wins; the status is then said again at the
// first pass after it.
const statusQueued = " (repair queued)"

// assess looks at one instance and records its status. It returns the
// repair to do (nil when none), or the status it recorded ("" when it
// left the instance alone: an operation runs).
func (r *Reconciler) assess(ctx context.Context, inst store.Instance) (*pending, string, error) {
	before, busy, err := r.operation(ctx, inst.ID)
	if err != nil || busy {
		return nil, "", err
	}
	_, plan, ok := r.d.Plans.Plan(inst.PlanID)
	if !ok {
		return nil, "", fmt.Errorf("plan %s is not in the catalog: left alone", inst.PlanID)
	}
	f, live, err := r.inspect(ctx, inst.ShortID)
	if err != nil {
		return nil, "", err
	}
	if plan.HA() {
		if inst.NodeClients, err = r.learnPlacement(ctx, inst, plan, live, f); err != nil {
			return nil, "", err
		}
		if f.NodesJob != "" {
			if f.NodesUnplaced, err = r.unplaced(ctx, inst.NodeClients, plan); err != nil {
				return nil, "", err
			}
		}
	}
	if err := r.inspectDrift(ctx, inst, plan, live, &f); err != nil {
		return nil, "", err
	}
	f.Interrupted = strings.HasPrefix(inst.Status, StatusRepairing)
	// Allocations down are reported only when nothing else is to do: a
	// repair restarts them anyway, and a hand edit Nomad is rolling out
	// stops them for a moment.
	if f.Clean() {
		if f.NotRunning, err = r.notRunning(ctx, inst.ShortID, instances.SizeOf(plan), f); err != nil {
			return nil, "", err
		}
	}
	action, status := Decide(plan.HA(), inst.NodeID, f)
	if action != Leave {
		return &pending{inst: inst, plan: plan, action: action, f: f, live: live, opID: before}, "", nil
	}
	if status != inst.Status && status != StatusRunning {
		r.log.Warn("instance degraded", slog.String("instance_id", inst.ID), slog.String("status", status))
	}
	return nil, status, r.d.Instances.SetStatus(ctx, inst.ID, status)
}

// perform runs the repair p, unless an operation of its instance started
// or finished since it was assessed (the operation wins), and returns the
// status it recorded ("" when it left the instance alone).
func (r *Reconciler) perform(ctx context.Context, lock Lock, p pending) (string, error) {
	inst := p.inst
	locked, err := lock.TryRepair(ctx, inst.ID)
	if err != nil || !locked {
		return "", err // an operation is being started: it wins
	}
	defer func() {
		if err := lock.EndRepair(context.WithoutCancel(ctx), inst.ID); err != nil {
			r.log.Warn("end repair", slog.String("instance_id", inst.ID), slog.String("error", err.Error()))
		}
	}()
	// An operation started, or finished (a deprovision), since we looked:
	// it wins.
	after, busy, err := r.operation(ctx, inst.ID)
	if err != nil || busy || after != p.opID {
		return "", err
	}
	return r.repair(ctx, inst, p.plan, p.action, p.f, p.live)
}

// operation returns the id of the instance's latest operation and whether
// it is in progress.
func (r *Reconciler) operation(ctx context.Context, instanceID string) (string, bool, error) {
	op, err := r.d.Instances.LatestOperation(ctx, instanceID)
	if errors.Is(err, store.ErrNotFound) {
		return "", false, nil
	}
	if err != nil {
		return "", false, err
	}
	return op.ID, op.State == store.InProgress, nil
}

// prefixes are where an instance's Variables live: its jobs' and the
// broker's own (binding passwords).
func prefixes(short string) []string {
	return []string{"nomad/jobs/pg-" + short + "-", "pgbroker/instances/" + short + "/"}
}

// inspectDrift sets f.Drifted and f.DriftUnplaceable for an instance whose
// jobs and Variables are all in Nomad (else the repair of what is lost
// registers the broker's definition anyway) and, for a single node, whose
// client is recorded; and logs what drifted.
func (r *Reconciler) inspectDrift(ctx context.Context, inst store.Instance, plan catalog.Plan, live registered, f *Finding) error {
	if (!plan.HA() && inst.NodeID == "") || !f.Clean() {
		return nil
	}
	drifts, err := r.drift(ctx, inst, plan, live)
	if err != nil {
		return fmt.Errorf("compare the jobs with the broker's definition: %w", err)
	}
	for _, d := range drifts {
		f.Drifted = append(f.Drifted, d.job)
		f.DriftUnplaceable = f.DriftUnplaceable || d.unplaceable
		r.log.Warn("job definition drifted", slog.String("instance_id", inst.ID), slog.String("job", d.job),
			slog.String("changes", strings.Join(d.fields, "; ")), slog.Bool("unplaceable", d.unplaceable))
	}
	return nil
}

// inspect compares Nomad with the state database for the instance short,
// and returns its jobs as Nomad holds them.
func (r *Reconciler) inspect(ctx context.Context, short string) (Finding, registered, error) {
	var f Finding
	var live registered
	var err error
	if live.nodes, f.NodesJob, err = r.jobState(ctx, naming.NodesJobID(short)); err != nil {
		return f, live, err
	}
	if live.gateways, f.GatewaysJob, err = r.jobState(ctx, naming.GatewaysJobID(short)); err != nil {
		return f, live, err
	}
	var inNomad, kept []string
	for _, prefix := range prefixes(short) {
		paths, err := r.d.Nomad.VariablePaths(ctx, prefix)
		if err != nil {
			return f, live, err
		}
		copies, err := r.d.Copies.Paths(ctx, prefix)
		if err != nil {
			return f, live, err
		}
		inNomad, kept = append(inNomad, paths...), append(kept, copies...)
	}
	for _, path := range kept {
		if !slices.Contains(inNomad, path) {
			f.Variables = append(f.Variables, path)
		}
	}
	nodes := naming.NodesSecretPath(short)
	f.NodesVariableLost = !slices.Contains(inNomad, nodes) && !slices.Contains(kept, nodes)
	return f, live, nil
}

// jobState returns the job jobID and "" when it is registered and not
// stopped, else "missing" (and no job) or "stopped".
func (r *Reconciler) jobState(ctx context.Context, jobID string) (*api.Job, string, error) {
	job, err := r.d.Nomad.Job(ctx, jobID)
	switch {
	case nomad.IsNotFound(err):
		return nil, "missing", nil
	case err != nil:
		return nil, "", err
	case job.Stop != nil && *job.Stop:
		return job, "stopped", nil
	}
	return job, "", nil
}

// repair puts back what f says is missing, logs and counts it, and records
// the instance's status; it returns that status.
func (r *Reconciler) repair(ctx context.Context, inst store.Instance, plan catalog.Plan, action Action, f Finding, live registered) (string, error) {
	log := r.log.With(slog.String("instance_id", inst.ID), slog.String("missing", f.String()), slog.String("reason", f.Reason()))
	start := time.Now()
	if err := r.d.Instances.SetStatus(ctx, inst.ID, StatusRepairing+": "+f.String()); err != nil {
		return "", err
	}
	log.Info("repair started")
	ctx, cancel := context.WithTimeout(ctx, r.repairTimeout)
	defer cancel()
	done, err := r.putBack(ctx, inst, plan, action, f, live, log)
	took := time.Since(start)
	status := StatusRunning
	if err != nil {
		status = "degraded: repair failed (" + f.String() + "): " + err.Error()
		r.metrics.repairs.WithLabelValues(f.Reason(), "failed").Inc()
		log.Error("repair failed", slog.String("done", done), slog.Duration("duration", took), slog.String("error", err.Error()))
	} else {
		r.metrics.repairs.WithLabelValues(f.Reason(), "repaired").Inc()
		r.metrics.seconds.Observe(took.Seconds())
		log.Info("repaired", slog.String("done", done), slog.Duration("duration", took))
	}
	return status, r.d.Instances.SetStatus(context.WithoutCancel(ctx), inst.ID, status)
}

// putBack restores the Variables, then, for Repair, provisions the instance
// again, and says what it did.
func (r *Reconciler) putBack(ctx context.Context, inst store.Instance, plan catalog.Plan, action Action, f Finding, live registered, log *slog.Logger) (string, error) {
	restored := 0
	for _, path := range f.Variables {
		created, err := r.d.Restorer.Restore(ctx, path)
		if err != nil {
			return fmt.Sprintf("%d Variables restored", restored), fmt.Errorf("restore Variable %s: %w", path, err)
		}
		if created {
			restored++
		}
	}
	done := fmt.Sprintf("%d Variables restored from their sealed copies", restored)
	if action != Repair {
		return done, nil
	}
	// f is what the pass read, one job after the other: a Business node job purged
	// since (an operator purging both jobs, the nodes first, while the pass
	// read them) is missing now, and must be waited for and registered
	// pinned to its data (nodePins), not left to the scheduler as a running
	// one. Read again: what Provision registers follows this read within
	// milliseconds, not the pass's.
	if f.NodesJob == "" && plan.HA() {
		var err error
		if live.nodes, f.NodesJob, err = r.jobState(ctx, naming.NodesJobID(inst.ShortID)); err != nil {
			return done, err
		}
		if f.NodesJob != "" {
			switch why, err := r.unplaced(ctx, inst.NodeClients, plan); {
			case err != nil:
				return done, err
			case why != "":
				return done, fmt.Errorf("the node job was lost while the pass read Nomad, and %s: the next pass reports it", why)
			}
		}
	}
	if f.NodesJob != "" {
		if err := r.waitNodesStopped(ctx, inst.ShortID); err != nil {
			return done, err
		}
	}
	target := instances.Target(inst, plan)
	if plan.HA() {
		did, err := r.putBackCluster(ctx, inst, plan, target, f, live, log)
		return done + did, err
	}
	// Back on its former client, so the credentials handed out before
	// (which name its address) connect again.
	gateway, err := r.formerGatewayNode(ctx, inst.ShortID)
	if err != nil {
		return done, err
	}
	if gateway == "" {
		log.Warn("the gateway's former client is not known: it is placed anew, and credentials handed out before may name a former address")
	}
	target.GatewayNodeID = gateway
	progress := func(step string) { log.Info("repair progress", slog.String("step", step)) }
	placed, err := r.d.Provisioner.Provision(ctx, target, instances.SizeOf(plan), progress)
	if err != nil {
		return done, err
	}
	if placed.NodeID != inst.NodeID {
		log.Warn("repaired instance runs on another client than the one recorded", slog.String("recorded", inst.NodeID), slog.String("placed", placed.NodeID))
	}
	return done + ", node and gateway jobs registered again on client " + placed.NodeID, nil
}

// waitNodesStopped waits until no allocation of the instance's node job
// (a stopped or purged one may still be shutting down) runs: never two
// PostgreSQL servers on one data directory.
func (r *Reconciler) waitNodesStopped(ctx context.Context, short string) error {
	allocs, err := r.d.Nomad.Allocations(ctx, naming.NodesJobID(short), true)
	if err != nil {
		return err
	}
	var live []string
	for _, a := range allocs {
		if a.ClientStatus == api.AllocClientStatusPending || a.ClientStatus == api.AllocClientStatusRunning {
			live = append(live, a.ID)
		}
	}
	return r.d.Nomad.WaitStopped(ctx, live)
}

func isDegraded(status string) bool { return strings.HasPrefix(status, "degraded:") }
