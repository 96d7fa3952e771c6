package tiers

import (
	"context"
	"errors"
	"sort"

	"github.com/hashicorp/nomad/api"

	"github.com/pgbroker/pgbroker/instance"
	"github.com/pgbroker/pgbroker/naming"
	"github.com/pgbroker/pgbroker/patroni"
	"github.com/pgbroker/pgbroker/users"
)

// Cluster is what orchestration needs of a Business instance's Patroni
// cluster (patroni.Client; a fake in unit tests).
type Cluster interface {
	Members(ctx context.Context) ([]patroni.Member, error)
	WaitMembers(ctx context.Context, what string, ok func([]patroni.Member) bool, progress func(string)) ([]patroni.Member, error)
	SetParameters(ctx context.Context, params map[string]any) error
	SetSynchronousMode(ctx context.Context, on bool) error
	RestoreSynchronousMode(ctx context.Context, want int, progress func(string)) error
	SwitchoverTo(ctx context.Context, name string, prepare func(context.Context) error, progress func(string)) error
}

// DCS is the store Patroni keeps its clusters' keys in (patroni.DCS): a
// cluster's keys, and the etcd user its Patroni logs in as.
type DCS interface {
	EnsureUser(ctx context.Context, scope, password string) error
	DeleteCluster(ctx context.Context, scope string) error
}

// patroniCluster returns the Patroni cluster of instance short: its
// members' REST APIs are those of the node service registrations in Nomad,
// its REST API password the Variable's patroni_password, its certificate
// verified as the broker's own connections verify PostgreSQL's.
func (ch *Changer) patroniCluster(ctx context.Context, short string) (Cluster, error) {
	password, err := ch.conn.ReadSecret(ctx, naming.NodesSecretPath(short), naming.ItemPatroniPassword)
	if err != nil {
		return nil, err
	}
	return patroni.New(func(ctx context.Context) ([]string, error) { return patroniAPIs(ctx, ch.nomad, short) }, password,
		ch.certs.AdminTLS(short)), nil
}

// patroniAPIs returns the REST API base URLs of instance short's nodes
// registered in Nomad, sorted. Errors when Nomad fails or none has one.
func patroniAPIs(ctx context.Context, n Nomad, short string) ([]string, error) {
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
func (ch *Changer) Members(ctx context.Context, in instance.Instance) ([]patroni.Member, error) {
	c, err := ch.clusters(ctx, in.ShortID)
	if err != nil {
		return nil, err
	}
	return c.Members(ctx)
}

// EnsureEtcdUser makes the etcd user pg-<short> the instance's Patroni logs
// in as, allowed its own keys only, with the password of item etcd_password
// of the node job's Variable (which must exist), the item added when
// missing: 32 letters and digits (users.NewPassword). Run before a node job
// under Patroni is registered: its nodes render that item. Idempotent.
// Errors: Nomad's, etcd's.
func (ch *Changer) EnsureEtcdUser(ctx context.Context, short string) error {
	items, err := ch.nomad.UpdateVariable(ctx, naming.NodesSecretPath(short), func(items api.VariableItems) bool {
		if items["etcd_password"] != "" {
			return false
		}
		items["etcd_password"] = users.NewPassword(32)
		return true
	})
	if err != nil {
		return err
	}
	return ch.dcs.EnsureUser(ctx, patroni.Scope(short), items["etcd_password"])
}

// DeletePatroniKeys deletes the instance's Patroni keys from etcd, then its
// etcd user and role (none configured: nothing to do).
func (ch *Changer) DeletePatroniKeys(ctx context.Context, short string) error {
	return ch.dcs.DeleteCluster(ctx, patroni.Scope(short))
}
