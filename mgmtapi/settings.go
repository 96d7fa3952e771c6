package mgmtapi

import (
	"context"
	"log/slog"
	"net/http"
	"time"

	"github.com/pgbroker/pgbroker/operation"
	"github.com/pgbroker/pgbroker/pgversion"
	"github.com/pgbroker/pgbroker/store"
)

// Members is what the overview needs of a highly available instance
// (instances.Service): Patroni's members in words, one clause each
// ("node-0 leader; node-1 sync_standby streaming, lag 0 B").
type Members interface {
	Members(ctx context.Context, inst store.Instance) (string, error)
	// Gateways lists where the gateways listen, "host:port" each, as
	// registered in Nomad now.
	Gateways(ctx context.Context, inst store.Instance) ([]string, error)
}

// settingRoutes serve an instance's summary and the settings its owner
// changes (seed 000: the dashboard's overview and settings).
type settingRoutes struct{ *API }

func (a settingRoutes) routes() []route {
	return []route{
		{http.MethodGet, "", a.summary},
		{http.MethodPut, "/settings", a.setSettings},
		{http.MethodPost, "/upgrade", a.upgrade},
	}
}

// summary is an instance in JSON.
type summary struct {
	InstanceID        string         `json:"instance_id"`
	PlanID            string         `json:"plan_id"`
	PlanName          string         `json:"plan_name"`
	Nodes             int            `json:"nodes"`                      // database nodes of the plan
	MemoryMiB         int            `json:"memory_mib"`                 // per node, the plan's limit
	MaxConnections    int            `json:"max_connections"`            // the plan's max_connections
	PostgreSQLVersion string         `json:"postgresql_version"`         // the version the instance runs ("15.18")
	NewestVersion     string         `json:"newest_postgresql_version"`  // the newest minor the broker offers (maintenance_info.version)
	UpgradeAvailable  bool           `json:"upgrade_available"`          // a newer minor of its major is offered: an OSB update with maintenance_info applies it
	Upgrades          []upgradeOffer `json:"upgrades"`                   // what it may upgrade to, minor first (pgversion.Offered.Upgrades); POST /upgrade applies one
	ForceTLS          bool           `json:"force_tls"`                  // only TLS connections may log in
	Status            string         `json:"status,omitempty"`           // the reconcile loop's last verdict
	Members           string         `json:"members,omitempty"`          // plans with standbys: Patroni's members
	Gateways          []string       `json:"gateways,omitempty"`         // where the gateways listen, host:port, as registered in Nomad
	LastOperation     *lastOperation `json:"last_operation,omitempty"`   // the latest operation, if any
	Deprovisioned     *time.Time     `json:"deprovisioned_at,omitempty"` // set once deprovisioned
	MembersError      string         `json:"members_error,omitempty"`    // why Members is missing
}

type lastOperation struct {
	Kind        string    `json:"kind"`
	State       string    `json:"state"`       // "in progress", "succeeded", "failed"
	Description string    `json:"description"` // last_operation's description
	UpdatedAt   time.Time `json:"updated_at"`
}

// GET /api/instances/{instance_id}: 200 with the summary, also while an
// operation runs and after deprovisioning; 404 for an unknown instance.
func (a settingRoutes) summary(w http.ResponseWriter, r *http.Request) {
	inst, err := a.stored(r)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	svc, plan, _ := a.Catalog.Plan(inst.PlanID)
	out := summary{InstanceID: inst.ID, PlanID: plan.ID, PlanName: plan.Name, Nodes: plan.Nodes, MemoryMiB: plan.MemoryMiB,
		MaxConnections: plan.MaxConnections, PostgreSQLVersion: inst.PostgresVersion, NewestVersion: svc.MaintenanceInfo.Version, ForceTLS: inst.ForceTLS,
		Status: inst.Status, Deprovisioned: inst.DeprovisionedAt}
	out.UpgradeAvailable = newerMinor(inst.PostgresVersion, svc.MaintenanceInfo.Version)
	out.Upgrades = a.upgradeOffers(inst, plan)
	op, err := a.Store.Instances().LatestOperation(r.Context(), inst.ID)
	if err != nil {
		a.fail(w, r, stateDB("read the instance's latest operation", err))
		return
	}
	if op.ID != "" {
		out.LastOperation = &lastOperation{Kind: string(op.Kind), State: string(op.State), Description: op.Description, UpdatedAt: op.UpdatedAt}
	}
	if !inst.Gone() && a.Members != nil {
		out.Gateways, _ = a.Members.Gateways(r.Context(), inst) // none registered: the overview shows none
		if plan.HA() {
			if out.Members, err = a.Members.Members(r.Context(), inst); err != nil {
				out.MembersError = err.Error()
			}
		}
	}
	writeJSON(w, http.StatusOK, out)
}

type settingsRequest struct {
	ForceTLS *bool `json:"force_tls"`
}

// PUT /api/instances/{instance_id}/settings {"force_tls": bool}: 202 with
// the update operation that applies it (the gateway's and nodes' access
// rules change); 200 {"changed": false} when it is already so; 400 for a
// missing or mistyped force_tls; 409 while an operation runs.
func (a settingRoutes) setSettings(w http.ResponseWriter, r *http.Request) {
	var req settingsRequest
	if err := readBody(r, &req); err != nil {
		a.fail(w, r, err)
		return
	}
	if req.ForceTLS == nil {
		a.fail(w, r, failure(http.StatusBadRequest, "MissingField", "force_tls is required: true or false"))
		return
	}
	inst, err := a.instance(r)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	if inst.ForceTLS == *req.ForceTLS {
		writeJSON(w, http.StatusOK, map[string]any{"changed": false, "force_tls": inst.ForceTLS})
		return
	}
	op, err := a.startOperation(r.Context(), inst, store.KindUpdate, operation.Encode(operation.Update{ForceTLS: req.ForceTLS}), "queued")
	if err != nil {
		a.fail(w, r, err)
		return
	}
	a.log.InfoContext(r.Context(), "force_tls change accepted", slog.String("instance_id", inst.ID),
		slog.String("operation", op.ID), slog.Bool("force_tls", *req.ForceTLS))
	w.Header().Set("Location", "/v2/service_instances/"+inst.ID+"/last_operation?operation="+op.ID)
	writeJSON(w, http.StatusAccepted, operationStarted{Operation: op.ID, State: string(store.InProgress),
		Description: "the instance's access rules change; poll last_operation"})
}

// newerMinor reports whether offered ("15.20.0") is a newer minor of the
// major of current ("15.18").
func newerMinor(current, offered string) bool {
	cur, err1 := pgversion.Parse(current)
	off, err2 := pgversion.Parse(offered)
	return err1 == nil && err2 == nil && off.Major == cur.Major && off.Compare(cur) > 0
}
