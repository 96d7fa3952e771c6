package mgmtapi

import (
	"fmt"
	"log/slog"
	"net/http"
	"strconv"
	"strings"

	"github.com/pgbroker/pgbroker/catalog"
	"github.com/pgbroker/pgbroker/operation"
	"github.com/pgbroker/pgbroker/pgversion"
	"github.com/pgbroker/pgbroker/store"
)

// upgradeOffer is one version an instance may move to, as the summary and
// the dashboard's version block show it.
type upgradeOffer struct {
	Version string `json:"version"` // the newest offered minor of its major ("18.6")
	Kind    string `json:"kind"`    // "minor" or "major"
	Effect  string `json:"effect"`  // what the upgrade does to the database, a sentence
	Blocked string `json:"blocked,omitempty"`
}

// upgradeOffers lists what inst, on plan, may upgrade to (the broker's
// Versions, pgversion.Offered.Upgrades), each with what it does; a major
// upgrade of a Business cluster is listed Blocked (not supported yet, as
// the OSB update says). None when the instance's version does not parse.
func (a *API) upgradeOffers(inst store.Instance, plan catalog.Plan) []upgradeOffer {
	have, err := pgversion.Parse(inst.PostgresVersion)
	if err != nil {
		return nil
	}
	out := []upgradeOffer{}
	for _, u := range a.Versions.Upgrades(have) {
		o := upgradeOffer{Version: u.To.String(), Kind: "minor", Blocked: u.Blocked}
		switch {
		case !u.Major && plan.HA():
			o.Effect = "The nodes move to the new binaries one at a time, standbys first, then one switchover: writes pause for about a second. Data, users and credentials are kept."
		case !u.Major:
			o.Effect = "The node restarts on the new binaries: the database is unavailable for a few seconds. Data, users and credentials are kept."
		default:
			o.Kind = "major"
			o.Effect = fmt.Sprintf("pg_upgrade --check runs first, and a refusal changes nothing. Then the database stops while pg_upgrade --link moves it to PostgreSQL %d "+
				"(seconds for most databases), extensions are updated and statistics rebuilt. Data, users and credentials are kept. There is no way back to %d.", u.To.Major, have.Major)
			if !pgversion.Archived(u.To.String()) {
				o.Effect += fmt.Sprintf(" Point-in-time recovery is off on PostgreSQL %d on this broker; daily dumps go on, and dumps taken before stay restorable.", u.To.Major)
			}
			if plan.HA() && o.Blocked == "" {
				o.Blocked = "a major upgrade of a Business cluster is not supported by this broker yet: take a dump and restore it into a new instance on PostgreSQL " + strconv.Itoa(u.To.Major)
			}
		}
		out = append(out, o)
	}
	return out
}

type upgradeRequest struct {
	PostgresqlVersion *string `json:"postgresql_version"`
}

// POST /api/instances/{instance_id}/upgrade {"postgresql_version": "15.20"
// or "18"}: the dashboard's one-click upgrade (seed 000, "Database
// Upgrade"), to one of the summary's upgrades, named by its version or, for
// a major, by its major. 202 with the update operation, the same one an
// OSB update with maintenance_info (a minor) or parameter
// postgresql_version (a major) records; 400 for a missing or mistyped
// field; 422 UpgradeNotOffered (not one of the instance's upgrades) or
// UpgradeNotPossible (offered but blocked, with the reason), recording
// nothing; 409 while an operation runs.
func (a settingRoutes) upgrade(w http.ResponseWriter, r *http.Request) {
	var req upgradeRequest
	if err := readBody(r, &req); err != nil {
		a.fail(w, r, err)
		return
	}
	if req.PostgresqlVersion == nil || strings.TrimSpace(*req.PostgresqlVersion) == "" {
		a.fail(w, r, failure(http.StatusBadRequest, "MissingField", `postgresql_version is required: a version ("15.20") or a major ("18") from the instance's upgrades`))
		return
	}
	inst, err := a.instance(r)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	_, plan, _ := a.Catalog.Plan(inst.PlanID)
	want := strings.TrimSpace(*req.PostgresqlVersion)
	offers := a.upgradeOffers(inst, plan)
	var chosen *upgradeOffer
	for i, o := range offers {
		if o.Version == want || (o.Kind == "major" && strings.Split(o.Version, ".")[0] == want) {
			chosen = &offers[i]
		}
	}
	if chosen == nil {
		names := make([]string, len(offers))
		for i, o := range offers {
			names[i] = o.Version
		}
		a.fail(w, r, failure(http.StatusUnprocessableEntity, "UpgradeNotOffered", "postgresql_version %q: the instance runs PostgreSQL %s, and its upgrades are: %s",
			want, inst.PostgresVersion, orNone(strings.Join(names, ", "))))
		return
	}
	if chosen.Blocked != "" {
		a.fail(w, r, failure(http.StatusUnprocessableEntity, "UpgradeNotPossible", "postgresql_version %q: %s", want, chosen.Blocked))
		return
	}
	op, err := a.startOperation(r.Context(), inst, store.KindUpdate, operation.Encode(operation.Update{PostgresVersion: &chosen.Version}), "queued")
	if err != nil {
		a.fail(w, r, err)
		return
	}
	a.log.InfoContext(r.Context(), "upgrade accepted", slog.String("instance_id", inst.ID), slog.String("operation", op.ID),
		slog.String("from", inst.PostgresVersion), slog.String("to", chosen.Version), slog.String("kind", chosen.Kind))
	w.Header().Set("Location", "/v2/service_instances/"+inst.ID+"/last_operation?operation="+op.ID)
	writeJSON(w, http.StatusAccepted, operationStarted{Operation: op.ID, State: string(store.InProgress),
		Description: fmt.Sprintf("the %s upgrade from PostgreSQL %s to %s started; poll last_operation", chosen.Kind, inst.PostgresVersion, chosen.Version)})
}

func orNone(s string) string {
	if s == "" {
		return "none"
	}
	return s
}
