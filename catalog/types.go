// Package catalog holds the broker's offer: the services and plans it sells,
// as data (the embedded catalog.yaml, or an operator's override file), their
// conversion to brokerapi services for GET /v2/catalog, the JSON Schemas that
// parameters are checked against, and the rules for changing plan.
//
// It knows nothing of Nomad or SQL. The default offer is described in
// DESIGN.md, "Catalog (default)" and "Backups".
package catalog

import "time"

// DefaultAutovacuumNaptime is PostgreSQL's own autovacuum_naptime.
const DefaultAutovacuumNaptime = time.Minute

// Tier is a plan's family. Source: DESIGN.md "Catalog (default)", seeds.
type Tier string

const (
	// TierSandbox is the free development plan: one small node, no backups.
	TierSandbox Tier = "sandbox"
	// TierStarter plans run one node with backups and PITR.
	TierStarter Tier = "starter"
	// TierBusiness plans are highly available: nodes behind gateways, with failover.
	TierBusiness Tier = "business"
)

// valid reports whether t is one of the known tiers.
func (t Tier) valid() bool {
	switch t {
	case TierSandbox, TierStarter, TierBusiness:
		return true
	}
	return false
}

// BackupPolicy is what a plan promises about backups. Source: DESIGN.md
// "Backups" table (from the seeds). A Sandbox plan has the zero value.
type BackupPolicy struct {
	Daily       bool // a daily pg_dump is scheduled
	DailyKept   int  // days of daily dumps kept (7 on paid plans)
	WeeklyKept  int  // weeks of weekly dumps kept
	MonthlyKept int  // months of monthly dumps kept
	ManualKept  int  // manual dumps kept; over it the oldest is deleted
	PITRDays    int  // point-in-time recovery window in days; 0 = none
}

// Cost is one price of a plan, as OSB plan metadata "costs" carries it:
// Unit is the period ("MONTHLY"), Amount maps a lower-case currency code
// ("eur") to the price in that currency.
type Cost struct {
	Unit   string
	Amount map[string]float64
}

// PlanMetadata is what a marketplace shows of a plan (OSB plan metadata):
// a display name ("Starter 512 MiB"), bullet points and costs.
type PlanMetadata struct {
	DisplayName string
	Bullets     []string
	Costs       []Cost
}

// Schemas holds a plan's JSON Schema documents (draft-04) as decoded JSON:
// objects are map[string]any and numbers json.Number. Provision checks the
// parameters of PUT /v2/service_instances/:id, Update those of PATCH on the
// same path, Bind those of PUT .../service_bindings/:id. Parse sets "$schema"
// to Draft04 when a document does not name its draft.
type Schemas struct {
	Provision map[string]any
	Update    map[string]any
	Bind      map[string]any
}

// Plan is one size of a service. Sizes are per node; a Business plan's
// instance uses Nodes times MemoryMiB, CPUMHz and DiskMiB.
// Source: catalog.yaml (DESIGN.md "Catalog (default)").
type Plan struct {
	ID          string // OSB plan id, globally unique: "postgresql-starter-512"
	GUID        string // the id published instead of ID (PublishGUIDs); "" publishes ID
	Name        string // OSB plan name, CLI-friendly, unique in its service
	Description string
	Tier        Tier
	Free        bool

	MemoryMiB      int // memory per database node, MiB
	CPUMHz         int // CPU per database node, MHz (Nomad "cpu")
	DiskMiB        int // data disk per database node, MiB
	Nodes          int // database nodes: 1, or 2 for highly available plans
	Gateways       int // HAProxy gateways in front of the nodes
	MaxConnections int // PostgreSQL max_connections
	// AutovacuumNaptime is PostgreSQL's autovacuum_naptime: the autovacuum
	// launcher visits each database once per naptime, forking a worker
	// (about 15 ms of CPU) even when nothing needs vacuuming. Whole
	// seconds, 1 s to 1 h; DefaultAutovacuumNaptime unless the catalog
	// says otherwise (the Sandbox plan: 5 min, issue 18's idle cost).
	AutovacuumNaptime time.Duration

	Backups  BackupPolicy
	Metadata PlanMetadata
	Schemas  Schemas
}

// HA reports whether the plan has standbys: its nodes run under Patroni, its
// gateways route writes to the leader and offer a read-only listener.
func (p Plan) HA() bool { return p.Nodes > 1 }

// MaintenanceInfo is the OSB maintenance_info of a service's plans. Version
// is semver ("15.18.0", the PostgreSQL version); Description is for people
// ("PostgreSQL 15.18").
type MaintenanceInfo struct {
	Version     string
	Description string
}

// ServiceMetadata is what a marketplace shows of a service (OSB service
// metadata). URLs are absolute; any field may be empty.
type ServiceMetadata struct {
	DisplayName         string
	ImageURL            string
	LongDescription     string
	ProviderDisplayName string
	DocumentationURL    string
	SupportURL          string
}

// Service is one OSB service offering and its plans.
type Service struct {
	ID          string // OSB service id, globally unique: "postgresql"
	GUID        string // the id published instead of ID (PublishGUIDs); "" publishes ID
	Name        string // OSB service name, CLI-friendly
	Description string
	Tags        []string

	Bindable             bool
	PlanUpdateable       bool
	InstancesRetrievable bool
	BindingsRetrievable  bool

	Metadata        ServiceMetadata
	MaintenanceInfo MaintenanceInfo // applies to every plan of the service
	Plans           []Plan
}

// Catalog is the whole offer. Build it with Default, Load or Parse, which
// also compile the plans' schemas; treat it as read-only afterwards. A
// Catalog is safe for concurrent use.
type Catalog struct {
	Services []Service

	// schemas holds the compiled parameter schemas, keyed by plan id.
	schemas map[string]planSchemas
}

// Action is the OSB request whose parameters are checked.
type Action string

const (
	// ActionProvision checks the parameters of a provision (Schemas.Provision).
	ActionProvision Action = "provision"
	// ActionUpdate checks the parameters of an update (Schemas.Update).
	ActionUpdate Action = "update"
	// ActionBind checks the parameters of a bind (Schemas.Bind).
	ActionBind Action = "bind"
)

// Plan returns the plan whose catalog id or GUID is planID and its service,
// and false when no service offers such a plan.
func (c *Catalog) Plan(planID string) (Service, Plan, bool) {
	if planID == "" {
		return Service{}, Plan{}, false
	}
	for _, s := range c.Services {
		for _, p := range s.Plans {
			if p.ID == planID || p.GUID == planID {
				return s, p, true
			}
		}
	}
	return Service{}, Plan{}, false
}

// Service returns the service whose catalog id or GUID is serviceID, and
// false when the catalog has no such service.
func (c *Catalog) Service(serviceID string) (Service, bool) {
	for _, s := range c.Services {
		if s.Is(serviceID) {
			return s, true
		}
	}
	return Service{}, false
}
