package provisioner

import (
	"context"
	"errors"
	"sort"

	"github.com/hashicorp/nomad/api"

	"github.com/pgbroker/pgbroker/naming"
	"github.com/pgbroker/pgbroker/patroni"
)

// Member is one node of a Business instance's cluster as Patroni reports
// it; kept here for broker, which names it through provisioner.
type Member = patroni.Member

// DescribeMembers renders members for a user (patroni.DescribeMembers):
// "node-0 leader; node-1 sync_standby streaming, lag 0 B".
func DescribeMembers(members []Member) string { return patroni.DescribeMembers(members) }

// PatroniScope is the Patroni scope of an instance's cluster (patroni.Scope).
func PatroniScope(short string) string { return patroni.Scope(short) }

// cluster is what orchestration needs of a Business instance's Patroni
// cluster (patroni.Client; a fake in unit tests).
type cluster interface {
	Members(ctx context.Context) ([]Member, error)
	WaitMembers(ctx context.Context, what string, ok func([]Member) bool, progress func(string)) ([]Member, error)
	SetParameters(ctx context.Context, params map[string]any) error
	SetSynchronousMode(ctx context.Context, on bool) error
	RestoreSynchronousMode(ctx context.Context, want int, progress func(string)) error
	SwitchoverTo(ctx context.Context, name string, prepare func(context.Context) error, progress func(string)) error
}

// dcs is the store Patroni keeps its clusters' keys in (patroni.DCS).
type dcs interface {
	DeleteCluster(ctx context.Context, scope string) error
}

// patroniCluster returns the Patroni cluster of instance short: its
// members' REST APIs are those of the node service registrations in Nomad,
// its REST API password the instance's replication password.
func (p *Provisioner) patroniCluster(ctx context.Context, short string) (cluster, error) {
	password, err := p.conn.ReadSecret(ctx, naming.NodesSecretPath(short), "replication_password")
	if err != nil {
		return nil, err
	}
	return patroni.New(func(ctx context.Context) ([]string, error) { return patroniAPIs(ctx, p.nomad, short) }, password), nil
}

// patroniAPIs returns the REST API base URLs of instance short's nodes
// registered in Nomad, sorted. Errors when Nomad fails or none has one.
func patroniAPIs(ctx context.Context, n allocations, short string) ([]string, error) {
	regs, err := n.Services(ctx, naming.NodeService(short))
	if err != nil {
		return nil, err
	}
	var out []string
	for _, r := range regs {
		if base := patroniAPI(r); base != "" {
			out = append(out, base)
		}
	}
	if len(out) == 0 {
		return nil, errors.New("no node with a Patroni REST API is registered in Nomad")
	}
	sort.Strings(out)
	return out, nil
}

// patroniAPI returns the Patroni REST API base URL of a node service
// registration, "" when it has none (no Patroni).
func patroniAPI(r *api.ServiceRegistration) string { return patroni.APIBase(r.Address, r.Tags) }

// Members returns the members of a Business instance's cluster (Patroni's
// view). Errors when no node's REST API answers.
func (p *Provisioner) Members(ctx context.Context, in Instance) ([]Member, error) {
	c, err := p.clusters(ctx, in.ShortID)
	if err != nil {
		return nil, err
	}
	return c.Members(ctx)
}

// deletePatroniKeys deletes the instance's Patroni keys from etcd (none
// configured: nothing to do).
func (p *Provisioner) deletePatroniKeys(ctx context.Context, short string) error {
	return p.dcs.DeleteCluster(ctx, PatroniScope(short))
}
