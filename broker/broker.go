// Package broker is pgbroker's OSB 2.17 contract: a brokerapi v10
// ServiceBroker that validates each request, records the intent in the state
// database, enqueues the work, and answers with the status code the spec
// names. Long work never runs inside a request: operations are carried out by
// the worker package.
package broker

import (
	"context"
	"log/slog"
	"time"

	"github.com/pivotal-cf/brokerapi/v10/domain"

	"github.com/pgbroker/pgbroker/catalog"
	"github.com/pgbroker/pgbroker/credentials"
	"github.com/pgbroker/pgbroker/pgversion"
	"github.com/pgbroker/pgbroker/store"
)

// Instances is the executor's synchronous side that requests need, for a
// stored instance: data size in bytes for plan-change checks, binding roles
// and their credentials, and a one-line description of a Business cluster's
// members. instances.Service implements it; the broker never imports the
// executor (issue 13, "a one-way flow").
type Instances interface {
	DataSize(ctx context.Context, inst store.Instance) (int64, error)
	Bind(ctx context.Context, inst store.Instance, bindingID string, readOnly bool) (credentials.Credentials, error)
	Credentials(ctx context.Context, inst store.Instance, role string, readOnly bool) (credentials.Credentials, error)
	Unbind(ctx context.Context, inst store.Instance, role string) error
	Members(ctx context.Context, inst store.Instance) (string, error)
}

// Broker implements domain.ServiceBroker.
type Broker struct {
	catalog   *catalog.Catalog
	store     *store.Store
	enqueue   store.EnqueueFunc
	instances Instances
	ports     store.PortRange
	log       *slog.Logger
	services  []domain.Service  // the catalog, converted once; read-only
	pitr      bool              // WAL archiving is on (PGBROKER_PITR_REPO): restore_from.point_in_time is offered
	ha        bool              // an etcd cluster is configured (PGBROKER_ETCD_ENDPOINTS): plans with standbys are offered
	versions  pgversion.Offered // PostgreSQL versions offered (PGBROKER_POSTGRES_VERSIONS)

	dashboardURL func(instanceID string) string // an instance's dashboard_url; nil: none is returned
}

// WithDashboardURL makes provision and GET instance return dashboardURL(id)
// as the instance's dashboard_url (OSB 2.17 "Provisioning": returned with
// the first response, even when provisioning is asynchronous). Returns b.
func (b *Broker) WithDashboardURL(dashboardURL func(instanceID string) string) *Broker {
	b.dashboardURL = dashboardURL
	return b
}

// WithMaximumPollingDuration sets every plan's maximum_polling_duration in
// the catalog (OSB 2.17 "Service Plan Object": seconds a platform SHOULD
// poll last_operation before taking the operation as failed) to d, rounded
// up to whole seconds. d is when the broker's own verdict comes at the
// latest (worker.Config.VerdictWithin), so a platform does not give up on an
// operation the broker may still finish. Returns b.
func (b *Broker) WithMaximumPollingDuration(d time.Duration) *Broker {
	seconds := int((d + time.Second - 1) / time.Second)
	for i := range b.services {
		for j := range b.services[i].Plans {
			b.services[i].Plans[j].MaximumPollingDuration = &seconds
		}
	}
	return b
}

// dashboard is the instance's dashboard_url, "" when none is configured.
func (b *Broker) dashboard(instanceID string) string {
	if b.dashboardURL == nil {
		return ""
	}
	return b.dashboardURL(instanceID)
}

// WithPITR says whether point-in-time recovery is on for this broker
// (config.Config.PITR()); without it,
// restore_from.point_in_time is refused (422). Returns b.
func (b *Broker) WithPITR(on bool) *Broker {
	b.pitr = on
	return b
}

// WithHA says whether plans with standbys (Business: Patroni, which needs
// etcd, PGBROKER_ETCD_ENDPOINTS) can be provisioned on this broker; without
// it they are refused (422). Returns b.
func (b *Broker) WithHA(on bool) *Broker {
	b.ha = on
	return b
}

var _ domain.ServiceBroker = (*Broker)(nil)

// New returns a Broker. enqueue puts an operation's job on the durable queue
// inside the transaction that records it (worker.Runner.Enqueue).
func New(cat *catalog.Catalog, st *store.Store, enqueue store.EnqueueFunc, inst Instances, ports store.PortRange, log *slog.Logger) *Broker {
	versions, _ := pgversion.ParseOffered(pgversion.DefaultOffered) // a constant that parses
	return &Broker{catalog: cat, store: st, enqueue: enqueue, instances: inst, ports: ports, log: log,
		services: cat.BrokerServices(), versions: versions}
}

// WithPostgres sets the PostgreSQL versions offered (default
// pgversion.DefaultOffered): new instances get o.Newest(), which the
// catalog's maintenance_info must name (catalog.OfferPostgres), and an
// update may upgrade an instance to a newer minor among them. Returns b.
func (b *Broker) WithPostgres(o pgversion.Offered) *Broker {
	b.versions = o
	return b
}

// Services returns the catalog. GET /v2/catalog. Callers must not modify it.
func (b *Broker) Services(context.Context) ([]domain.Service, error) {
	return b.services, nil
}
