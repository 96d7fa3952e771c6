package provisioner

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sort"

	"github.com/hashicorp/nomad/api"

	"github.com/pgbroker/pgbroker/nomad"
)

// JobFailedError: a batch job's allocation failed; running it again would
// fail the same way (nomad.JobFailedError).
type JobFailedError = nomad.JobFailedError

// runningAllocs waits until count allocations of version of jobID have task
// running (nomad.Cluster.WaitRunning), reporting progress as "starting
// <what> i of count" with Nomad's latest problem.
func (p *Provisioner) runningAllocs(ctx context.Context, jobID string, version uint64, count int, task, what string, progress Progress) ([]*api.AllocationListStub, error) {
	return p.nomad.WaitRunning(ctx, jobID, version, count, task, what, progress)
}

// waitStopped waits until every allocation in ids is terminal or gone.
func (p *Provisioner) waitStopped(ctx context.Context, ids []string) error {
	return p.nomad.WaitStopped(ctx, ids)
}

// waitComplete waits for the batch job jobID's allocation to finish and
// returns its id. Errors: *JobFailedError when it failed.
func (p *Provisioner) waitComplete(ctx context.Context, jobID, task string) (string, error) {
	return p.nomad.WaitComplete(ctx, jobID, task)
}

// gatewayAddress returns the first of gatewayAddresses.
func (p *Provisioner) gatewayAddress(ctx context.Context, short string) (string, error) {
	hosts, err := p.gatewayAddresses(ctx, short)
	if err != nil {
		return "", err
	}
	return hosts[0], nil
}

// gatewayAddresses returns the distinct addresses the gateway service is
// registered at, sorted. Errors when none is registered.
func (p *Provisioner) gatewayAddresses(ctx context.Context, short string) ([]string, error) {
	regs, err := p.nomad.Services(ctx, GatewayService(short))
	if err != nil {
		return nil, fmt.Errorf("look up gateway service: %w", err)
	}
	if len(regs) == 0 {
		return nil, errors.New("the gateway is not registered in Nomad")
	}
	hosts := make([]string, 0, len(regs))
	for _, r := range regs {
		hosts = append(hosts, r.Address)
	}
	sort.Strings(hosts)
	return slices.Compact(hosts), nil
}
