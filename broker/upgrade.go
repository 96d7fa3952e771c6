package broker

import (
	"fmt"

	"github.com/pivotal-cf/brokerapi/v10/domain"

	"github.com/pgbroker/pgbroker/catalog"
	"github.com/pgbroker/pgbroker/pgversion"
	"github.com/pgbroker/pgbroker/store"
)

// upgradeTarget reads an update's maintenance_info (OSB 2.17 "Updating a
// Service Instance": cf update-service --upgrade sends the catalog's) as a
// PostgreSQL version for inst, moving from plan from to plan to. It returns
// "" when the update changes no version (none given, or the instance's own),
// else the version to upgrade to ("15.20"). The catalog's maintenance_info
// sent to an instance on a newer major than the default (after a major
// upgrade) asks for the newest offered minor of the instance's own major
// ("18.7"), or nothing when it runs that. A single-node instance restarts
// on the new binaries; a cluster rolls (standbys first, one switchover, as a
// plan change between Business plans). Errors are 422
// MaintenanceInfoConflict with the reason, and nothing is recorded: a
// version that is not offered, a downgrade, another major, or an upgrade
// together with a move between a single node and a cluster.
func (b *Broker) upgradeTarget(inst store.Instance, mi *domain.MaintenanceInfo, from, to catalog.Plan) (string, error) {
	if mi == nil || mi.Version == "" {
		return "", nil
	}
	want, err := pgversion.Parse(mi.Version)
	if err != nil {
		return "", maintenanceInfoConflict("maintenance_info.version: %v; this broker offers %s", err, b.versions.Newest().Semver())
	}
	have, err := pgversion.Parse(inst.PostgresVersion)
	if err != nil {
		return "", maintenanceInfoConflict("the instance's PostgreSQL version %q is not known, so it cannot be upgraded: contact the operator", inst.PostgresVersion)
	}
	if have.Major > want.Major && want == b.versions.Newest() {
		// The platform sends the catalog's maintenance_info (the default
		// major's newest) to an instance a major upgrade took past that
		// major (cf update-service --upgrade): it asks for the instance's
		// newest maintenance, the newest offered minor of its own major,
		// and nothing when it runs that already (issue 15: minor upgrades
		// within the new major).
		newest, ok := b.versions.NewestOf(have.Major)
		if !ok || newest.Compare(have) <= 0 {
			return "", nil
		}
		want = newest
	}
	if want == have {
		return "", nil
	}
	if err := b.versions.CheckUpgrade(have, want); err != nil {
		return "", maintenanceInfoConflict("maintenance_info.version %s: %v", mi.Version, err)
	}
	if from.HA() != to.HA() {
		return "", maintenanceInfoConflict("maintenance_info.version %s: an upgrade cannot come with a change between a single node and a cluster (plan %s to %s): change the plan first, then upgrade",
			mi.Version, from.ID, to.ID)
	}
	return want.String(), nil
}

// majorUpgradeParameter is the update parameter naming the major version to
// upgrade to ("18"; catalog.yaml's update schemas).
const majorUpgradeParameter = "postgresql_version"

// majorUpgradeTarget reads an update's parameter postgresql_version (params
// as validated against the plan's update schema) for inst, moving from plan
// from to plan to, minor the maintenance_info upgrade of the same update
// (upgradeTarget). It returns "" when there is none or it names the
// instance's own major, else the version to upgrade to: the newest offered
// minor of that major ("18.6"). Errors are 422 MajorUpgradeNotPossible
// naming the parameter and the reason, and nothing is recorded: a
// downgrade, a major not offered, an instance not on the newest offered
// minor of its major, a Business instance (not supported yet), or any other
// change in the same update (a plan, maintenance_info, another parameter).
func (b *Broker) majorUpgradeTarget(inst store.Instance, params map[string]any, from, to catalog.Plan, minor string) (string, error) {
	raw, ok := params[majorUpgradeParameter]
	if !ok {
		return "", nil
	}
	name, _ := raw.(string) // the schema says string
	major, err := pgversion.ParseMajor(name)
	if err != nil {
		return "", majorUpgradeNotPossible("%s: %v", majorUpgradeParameter, err)
	}
	have, err := pgversion.Parse(inst.PostgresVersion)
	if err != nil {
		return "", majorUpgradeNotPossible("%s: the instance's PostgreSQL version %q is not known, so it cannot be upgraded: contact the operator", majorUpgradeParameter, inst.PostgresVersion)
	}
	if major == have.Major {
		return "", nil
	}
	target, err := b.versions.CheckMajorUpgrade(have, major)
	if err != nil {
		return "", majorUpgradeNotPossible("%s %q: %v", majorUpgradeParameter, name, err)
	}
	if from.HA() || to.HA() {
		return "", majorUpgradeNotPossible("%s %q: a major upgrade of a Business cluster is not supported by this broker yet (only Sandbox and Starter instances): "+
			"take a dump and restore it into a new instance on PostgreSQL %d, or wait for the Business major upgrade", majorUpgradeParameter, name, major)
	}
	if from.ID != to.ID {
		return "", majorUpgradeNotPossible("%s %q: a major upgrade cannot come with a plan change (plan %s to %s): change the plan first, then upgrade",
			majorUpgradeParameter, name, from.ID, to.ID)
	}
	if minor != "" {
		return "", majorUpgradeNotPossible("%s %q: a major upgrade cannot come with a maintenance_info upgrade in the same update", majorUpgradeParameter, name)
	}
	for k := range params {
		if k != majorUpgradeParameter {
			return "", majorUpgradeNotPossible("%s %q: a major upgrade cannot come with other changes (parameter %s): update them before or after", majorUpgradeParameter, name, k)
		}
	}
	return target.String(), nil
}

func majorUpgradeNotPossible(format string, args ...any) error {
	return unprocessable("MajorUpgradeNotPossible", format, args...)
}

func maintenanceInfoConflict(format string, args ...any) error {
	return unprocessable("MaintenanceInfoConflict", format, args...)
}

// versionAttributes are GET instance's metadata attributes of the
// instance's version: "postgres_version" ("15.18") and, when the broker
// offers a newer minor of its major, "upgrade_available" ("15.20"; for an
// instance a major upgrade took past the default major, the newest of its
// own, which an update with the catalog's maintenance_info applies).
func (b *Broker) versionAttributes(inst store.Instance, attrs map[string]string) {
	if inst.PostgresVersion == "" {
		return
	}
	attrs["postgres_version"] = inst.PostgresVersion
	have, err := pgversion.Parse(inst.PostgresVersion)
	if err != nil {
		return
	}
	if newest, ok := b.versions.NewestOf(have.Major); ok && b.versions.CheckUpgrade(have, newest) == nil {
		attrs["upgrade_available"] = newest.String()
	}
}

// describeUpgrade is the log attribute value of an upgrade, "" for none.
func describeUpgrade(inst store.Instance, target string) string {
	if target == "" {
		return ""
	}
	return fmt.Sprintf("%s to %s", inst.PostgresVersion, target)
}
