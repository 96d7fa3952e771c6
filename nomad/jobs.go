package nomad

import (
	"context"
	"fmt"
	"sort"
	"strconv"
	"strings"

	"github.com/hashicorp/nomad/api"

	"github.com/pgbroker/pgbroker/naming"
)

// Parse has the Nomad server parse the HCL2 job file src with the input
// variables vars (strings, ints or string lists), gives the job the id and
// name jobID, and stamps Meta[naming.MetaBroker]. Errors: Nomad's parse error.
func (n *Cluster) Parse(src, jobID string, vars map[string]any) (*api.Job, error) {
	job, err := n.c.Jobs().ParseHCLOpts(&api.JobsParseRequest{
		JobHCL:       src,
		Variables:    hclVars(vars),
		Canonicalize: true,
	})
	if err != nil {
		return nil, fmt.Errorf("parse job %s with Nomad: %w", jobID, err)
	}
	job.ID = &jobID
	job.Name = &jobID
	if job.Meta == nil {
		job.Meta = map[string]string{}
	}
	job.Meta[naming.MetaBroker] = n.brokerName
	if n.deployment != "" {
		job.Meta[naming.MetaDeployment] = n.deployment
	}
	return job, nil
}

// Register registers job and returns the version Nomad gave it. Registering
// a job identical to the current one creates no new version.
func (n *Cluster) Register(ctx context.Context, job *api.Job) (uint64, error) {
	if _, _, err := n.c.Jobs().Register(job, writeOpts(ctx)); err != nil {
		return 0, fmt.Errorf("register job %s with Nomad: %w", *job.ID, err)
	}
	cur, err := n.Job(ctx, *job.ID)
	if err != nil {
		return 0, err
	}
	return *cur.Version, nil
}

// Job reads the job jobID as Nomad holds it now. Errors: IsNotFound when
// there is none; others name the job.
func (n *Cluster) Job(ctx context.Context, jobID string) (*api.Job, error) {
	job, _, err := n.c.Jobs().Info(jobID, queryOpts(ctx))
	if err != nil {
		return nil, fmt.Errorf("read job %s from Nomad: %w", jobID, err)
	}
	return job, nil
}

// Plan dry-runs job against the cluster (nomad job plan -diff): what would
// change, with the difference between job and the registered one
// (JobPlanResponse.Diff, Type "None" when registering job would change
// nothing) and the task groups that could not be placed (FailedTGAllocs).
func (n *Cluster) Plan(ctx context.Context, job *api.Job) (*api.JobPlanResponse, error) {
	plan, _, err := n.c.Jobs().PlanOpts(job, &api.PlanOptions{Diff: true}, writeOpts(ctx))
	if err != nil {
		return nil, fmt.Errorf("plan job %s with Nomad: %w", *job.ID, err)
	}
	return plan, nil
}

// Stop stops the job jobID and keeps it (nomad job stop); a missing job is
// not an error.
func (n *Cluster) Stop(ctx context.Context, jobID string) error {
	if _, _, err := n.c.Jobs().Deregister(jobID, false, writeOpts(ctx)); err != nil && !IsNotFound(err) {
		return fmt.Errorf("stop %s in Nomad: %w", jobID, err)
	}
	return nil
}

// Purge stops the job jobID and removes it (nomad job stop -purge); a
// missing job is not an error.
func (n *Cluster) Purge(ctx context.Context, jobID string) error {
	if _, _, err := n.c.Jobs().Deregister(jobID, true, writeOpts(ctx)); err != nil && !IsNotFound(err) {
		return fmt.Errorf("purge %s from Nomad: %w", jobID, err)
	}
	return nil
}

// Allocations lists the allocations of jobID (with all, those of its
// earlier versions too). A missing job has none.
func (n *Cluster) Allocations(ctx context.Context, jobID string, all bool) ([]*api.AllocationListStub, error) {
	allocs, _, err := n.c.Jobs().Allocations(jobID, all, queryOpts(ctx))
	if err != nil && !IsNotFound(err) {
		return nil, fmt.Errorf("list allocations of %s in Nomad: %w", jobID, err)
	}
	return allocs, nil
}

// JobIDs lists the ids of the jobs whose id starts with prefix, with the
// owner their Meta names.
func (n *Cluster) JobIDs(ctx context.Context, prefix string) (map[string]Owner, error) {
	q := queryOpts(ctx)
	q.Prefix = prefix
	stubs, _, err := n.c.Jobs().ListOptions(&api.JobListOptions{Fields: &api.JobListFields{Meta: true}}, q)
	if err != nil {
		return nil, fmt.Errorf("list jobs %s* in Nomad: %w", prefix, err)
	}
	out := make(map[string]Owner, len(stubs))
	for _, s := range stubs {
		out[s.ID] = Owner{Broker: s.Meta[naming.MetaBroker], Deployment: s.Meta[naming.MetaDeployment]}
	}
	return out, nil
}

// hclVars renders HCL2 variable assignments ("name = value" lines, the
// format of a .vars file) for JobsParseRequest.Variables.
func hclVars(vars map[string]any) string {
	keys := make([]string, 0, len(vars))
	for k := range vars {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var b strings.Builder
	for _, k := range keys {
		fmt.Fprintf(&b, "%s = %s\n", k, hclValue(vars[k]))
	}
	return b.String()
}

func hclValue(v any) string {
	switch v := v.(type) {
	case int:
		return strconv.Itoa(v)
	case []string:
		q := make([]string, len(v))
		for i, s := range v {
			q[i] = hclString(s)
		}
		return "[" + strings.Join(q, ", ") + "]"
	default:
		return hclString(fmt.Sprint(v))
	}
}

// hclString quotes s as an HCL2 string literal: JSON-style escapes, and "${"
// and "%{" escaped so no value is ever interpolated.
func hclString(s string) string {
	q := strconv.Quote(s)
	q = strings.ReplaceAll(q, "${", "$${")
	return strings.ReplaceAll(q, "%{", "%%{")
}

// NodeAddresses returns each Nomad client's advertised address (nomad
// node status -verbose: Address), by node id. Errors: Nomad did not answer.
func (n *Cluster) NodeAddresses(ctx context.Context) (map[string]string, error) {
	stubs, _, err := n.c.Nodes().List(queryOpts(ctx))
	if err != nil {
		return nil, fmt.Errorf("list Nomad clients: %w", err)
	}
	out := make(map[string]string, len(stubs))
	for _, s := range stubs {
		out[s.ID] = s.Address
	}
	return out, nil
}
