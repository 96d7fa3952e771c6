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
	"github.com/pgbroker/pgbroker/stats"
	"github.com/pgbroker/pgbroker/store"
)

// Service answers the front doors' synchronous calls through p, for
// instances on the plans of cat. Safe for concurrent use.
type Service struct {
	p      *provisioner.Provisioner
	cat    *catalog.Catalog
	allocs Allocations     // container figures; nil until WithAllocations
	peaks  *stats.Peaks    // memory and swap maxima per allocation
	cpu    *stats.CPUMeter // CPU readings of control groups per allocation
}

// New returns a Service over p and the catalog cat.
func New(p *provisioner.Provisioner, cat *catalog.Catalog) *Service {
	return &Service{p: p, cat: cat, peaks: stats.NewPeaks(), cpu: stats.NewCPUMeter()}
}

// Target is the provisioner's view of the stored instance i on plan: its
// short id, gateway port, Nomad node, Force TLS, managed extensions and
// PostgreSQL version as stored, and its read-only port only when plan has standbys (a port kept
// from a former Business plan has no listener on a single-node plan). It is
// the one place that builds provisioner.Instance.
func Target(i store.Instance, plan catalog.Plan) provisioner.Instance {
	t := provisioner.Instance{ShortID: i.ShortID, GatewayPort: i.GatewayPort, NodeID: i.NodeID,
		ForceTLS: i.ForceTLS, Extensions: i.Extensions, PostgresVersion: i.PostgresVersion}
	if plan.HA() {
		t.ReadOnlyPort = i.ReadOnlyPort
	}
	return t
}

// target is Target of i on its current plan; a plan no longer in the
// catalog counts as single-node.
func (s *Service) target(i store.Instance) provisioner.Instance {
	_, plan, _ := s.cat.Plan(i.PlanID)
	return Target(i, plan)
}

// SizeOf is the part of plan that shapes the Nomad jobs: memory (MiB) and CPU
// (MHz) per node, node and gateway counts, max_connections, autovacuum
// naptime and the PITR window (days).
func SizeOf(plan catalog.Plan) provisioner.Size {
	return provisioner.Size{MemoryMiB: plan.MemoryMiB, CPUMHz: plan.CPUMHz, Nodes: plan.Nodes, Gateways: plan.Gateways,
		MaxConnections: plan.MaxConnections, AutovacuumNaptime: plan.AutovacuumNaptime, PITRDays: plan.Backups.PITRDays}
}
