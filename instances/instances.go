// Package instances is the executor's side of the front doors' synchronous
// calls (bind, members, data size, users, extensions): it turns a stored
// instance (store.Instance) and its plan (catalog.Plan) into what the
// provisioner needs (Target, SizeOf) and calls it. The front doors (broker,
// mgmtapi) declare the interfaces they need; this package satisfies them, so
// that they never import the executor (issue 13, "a one-way flow").
package instances

import (
	"github.com/pgbroker/pgbroker/catalog"
	"github.com/pgbroker/pgbroker/provisioner"
	"github.com/pgbroker/pgbroker/store"
)

// Service answers the front doors' synchronous calls through p. Safe for
// concurrent use.
type Service struct {
	p *provisioner.Provisioner
}

// New returns a Service over p.
func New(p *provisioner.Provisioner) *Service { return &Service{p: p} }

// Target is the provisioner's view of the stored instance i: its short id,
// gateway ports, Nomad node, Force TLS and managed extensions, copied as
// stored. It is the one place that builds provisioner.Instance.
func Target(i store.Instance) provisioner.Instance {
	return provisioner.Instance{ShortID: i.ShortID, GatewayPort: i.GatewayPort, ReadOnlyPort: i.ReadOnlyPort,
		NodeID: i.NodeID, ForceTLS: i.ForceTLS, Extensions: i.Extensions}
}

// SizeOf is the part of plan that shapes the Nomad jobs: memory (MiB) and CPU
// (MHz) per node, node and gateway counts, max_connections, autovacuum
// naptime and the PITR window (days).
func SizeOf(plan catalog.Plan) provisioner.Size {
	return provisioner.Size{MemoryMiB: plan.MemoryMiB, CPUMHz: plan.CPUMHz, Nodes: plan.Nodes, Gateways: plan.Gateways,
		MaxConnections: plan.MaxConnections, AutovacuumNaptime: plan.AutovacuumNaptime, PITRDays: plan.Backups.PITRDays}
}
