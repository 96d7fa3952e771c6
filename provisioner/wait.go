package provisioner

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sort"

	"github.com/pgbroker/pgbroker/naming"
	"github.com/pgbroker/pgbroker/nomad"
)

// JobFailedError: a batch job's allocation failed; running it again would
// fail the same way (nomad.JobFailedError).
type JobFailedError = nomad.JobFailedError

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
	regs, err := p.nomad.Services(ctx, naming.GatewayService(short))
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
