package provisioner

import (
	"context"

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

// Members returns the members of a Business instance's cluster (Patroni's
// view). Errors when no node's REST API answers.
func (p *Provisioner) Members(ctx context.Context, in Instance) ([]Member, error) {
	return p.tiers.Members(ctx, in)
}
