package nomad

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/hashicorp/nomad/api"
)

// taskStateRunning is api.TaskState.State of a running task.
const taskStateRunning = "running"

// blockingWait bounds each Nomad blocking query.
const blockingWait = 2 * time.Second

// WaitRunning waits until count allocations of version of jobID have task
// running, and returns them. While waiting it reports progress as
// "<what> i of count" with the latest problem Nomad reports (a placement
// failure, a task event). It returns when ctx ends.
func (n *Cluster) WaitRunning(ctx context.Context, jobID string, version uint64, count int, task, what string, progress func(step string)) ([]*api.AllocationListStub, error) {
	var index uint64
	last := ""
	for {
		allocs, meta, err := n.c.Jobs().Allocations(jobID, false, (&api.QueryOptions{WaitIndex: index, WaitTime: blockingWait}).WithContext(ctx))
		if err != nil {
			if ctx.Err() != nil {
				return nil, fmt.Errorf("waiting for %s: %w; last Nomad error: %v", what, ctx.Err(), err)
			}
			return nil, fmt.Errorf("list allocations of %s in Nomad: %w", jobID, err)
		}
		index = meta.LastIndex
		running := runningOf(allocs, version, task)
		if len(running) >= count {
			return running, nil
		}
		step := fmt.Sprintf("starting %s %d of %d", what, len(running)+1, count)
		if problem := n.latestProblem(ctx, jobID, allocs, version, task); problem != "" {
			step += ": " + problem
		}
		if step != last {
			progress(step)
			last = step
		}
		if ctx.Err() != nil {
			return nil, fmt.Errorf("%s: %w", step, ctx.Err())
		}
	}
}

func runningOf(allocs []*api.AllocationListStub, version uint64, task string) []*api.AllocationListStub {
	var out []*api.AllocationListStub
	for _, a := range allocs {
		if a.JobVersion != version || a.ClientStatus != api.AllocClientStatusRunning || a.DesiredStatus != api.AllocDesiredStatusRun {
			continue
		}
		if ts, ok := a.TaskStates[task]; ok && ts.State == taskStateRunning {
			out = append(out, a)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// latestProblem describes why allocations are not running yet: the newest
// task event of a failing allocation, or the scheduler's placement failure.
func (n *Cluster) latestProblem(ctx context.Context, jobID string, allocs []*api.AllocationListStub, version uint64, task string) string {
	for _, a := range allocs {
		if a.JobVersion != version {
			continue
		}
		ts, ok := a.TaskStates[task]
		if !ok || len(ts.Events) == 0 {
			continue
		}
		if ts.Failed || ts.Restarts > 0 || a.ClientStatus == api.AllocClientStatusFailed {
			ev := ts.Events[len(ts.Events)-1]
			return strings.TrimSpace(ev.Type + ": " + ev.DisplayMessage)
		}
	}
	evals, _, err := n.c.Jobs().Evaluations(jobID, queryOpts(ctx))
	if err != nil || len(evals) == 0 {
		return ""
	}
	sort.Slice(evals, func(i, j int) bool { return evals[i].CreateIndex > evals[j].CreateIndex })
	for tg, m := range evals[0].FailedTGAllocs {
		return fmt.Sprintf("Nomad cannot place %s: %s", tg, placementReason(m))
	}
	return ""
}

func placementReason(m *api.AllocationMetric) string {
	var parts []string
	for dim, n := range m.DimensionExhausted {
		parts = append(parts, fmt.Sprintf("%s exhausted on %d node(s)", dim, n))
	}
	for c, n := range m.ConstraintFiltered {
		parts = append(parts, fmt.Sprintf("constraint %s filtered %d node(s)", c, n))
	}
	if m.NodesEvaluated == 0 {
		parts = append(parts, "no eligible client node")
	}
	sort.Strings(parts)
	return strings.Join(parts, "; ")
}

// WaitStopped waits until every allocation in ids is terminal or gone.
func (n *Cluster) WaitStopped(ctx context.Context, ids []string) error {
	for _, id := range ids {
		for {
			a, _, err := n.c.Allocations().Info(id, (&api.QueryOptions{}).WithContext(ctx))
			if err != nil {
				var ue api.UnexpectedResponseError
				if errors.As(err, &ue) && ue.StatusCode() == 404 {
					break
				}
				if ctx.Err() != nil {
					return fmt.Errorf("waiting for allocation %s to stop: %w", shortAlloc(id), ctx.Err())
				}
				return fmt.Errorf("read allocation %s from Nomad: %w", shortAlloc(id), err)
			}
			if a.ClientTerminalStatus() {
				break
			}
			select {
			case <-ctx.Done():
				return fmt.Errorf("waiting for allocation %s to stop: %w", shortAlloc(id), ctx.Err())
			case <-time.After(200 * time.Millisecond):
			}
		}
	}
	return nil
}

// WaitComplete waits for the batch job jobID's allocation to finish and
// returns the id of the allocation that completed. Errors:
// *JobFailedError with the task's last event if it failed; others when
// Nomad is unreachable or ctx ends.
func (n *Cluster) WaitComplete(ctx context.Context, jobID, task string) (string, error) {
	var index uint64
	for {
		allocs, meta, err := n.c.Jobs().Allocations(jobID, false, (&api.QueryOptions{WaitIndex: index, WaitTime: blockingWait}).WithContext(ctx))
		if err != nil {
			return "", fmt.Errorf("list allocations of %s in Nomad: %w", jobID, err)
		}
		index = meta.LastIndex
		for _, a := range allocs {
			switch a.ClientStatus {
			case api.AllocClientStatusComplete:
				return a.ID, nil
			case api.AllocClientStatusFailed:
				msg := "failed"
				if ts, ok := a.TaskStates[task]; ok && len(ts.Events) > 0 {
					ev := ts.Events[len(ts.Events)-1]
					msg = ev.Type + ": " + ev.DisplayMessage
				}
				return "", &JobFailedError{JobID: jobID, AllocID: a.ID, Event: msg}
			}
		}
		if ctx.Err() != nil {
			return "", fmt.Errorf("waiting for job %s: %w", jobID, ctx.Err())
		}
	}
}

// JobFailedError: a batch job's allocation failed; running it again would
// fail the same way.
type JobFailedError struct {
	JobID   string
	AllocID string
	Event   string // the task's last event ("Terminated: Exit Code: 1")
	Stderr  string // the end of the task's standard error, when read
}

func (e *JobFailedError) Error() string {
	msg := fmt.Sprintf("job %s: %s", e.JobID, e.Event)
	if e.Stderr != "" {
		msg += ": " + e.Stderr
	}
	return msg
}

// AllocationsAfter is a blocking query of jobID's current allocations: it
// answers once Nomad's index passes index (or after about 2 s) with the
// allocations and the index to pass next time (0 asks at once).
func (n *Cluster) AllocationsAfter(ctx context.Context, jobID string, index uint64) ([]*api.AllocationListStub, uint64, error) {
	allocs, meta, err := n.c.Jobs().Allocations(jobID, false, (&api.QueryOptions{WaitIndex: index, WaitTime: blockingWait}).WithContext(ctx))
	if err != nil {
		return nil, index, fmt.Errorf("list allocations of %s in Nomad: %w", jobID, err)
	}
	return allocs, meta.LastIndex, nil
}
