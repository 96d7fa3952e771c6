package catalog

import (
	"fmt"
	"maps"
	"regexp"
	"slices"
	"time"
)

// semverPattern is the regular expression of Semantic Versioning 2.0.0
// (semver.org), which OSB asks of maintenance_info.version.
var semverPattern = regexp.MustCompile(`^(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)` +
	`(?:-((?:0|[1-9]\d*|\d*[a-zA-Z-][0-9a-zA-Z-]*)(?:\.(?:0|[1-9]\d*|\d*[a-zA-Z-][0-9a-zA-Z-]*))*))?` +
	`(?:\+([0-9a-zA-Z-]+(?:\.[0-9a-zA-Z-]+)*))?$`)

// check reports everything wrong with a decoded catalog that the file shape
// alone does not rule out. Field names in messages are catalog.yaml keys.
func check(c *Catalog) error {
	var p problems
	if len(c.Services) == 0 {
		p.add("", "services: at least one service is required")
	}
	serviceIDs := map[string]bool{}
	serviceNames := map[string]bool{}
	planIDs := map[string]string{} // plan id → service id, across services (OSB: plan ids are globally unique)
	for i, s := range c.Services {
		where := fmt.Sprintf("service %q", s.ID)
		if s.ID == "" {
			where = fmt.Sprintf("services[%d]", i)
			p.add(where, "id is required")
		} else if serviceIDs[s.ID] {
			p.add(where, "id %q is used by another service", s.ID)
		}
		serviceIDs[s.ID] = true
		checkName(&p, where, s.Name, serviceNames, "service")
		if s.Description == "" {
			p.add(where, "description is required")
		}
		if !semverPattern.MatchString(s.MaintenanceInfo.Version) {
			p.add(where, "maintenance_info.version %q is not a semantic version such as \"15.18.0\"", s.MaintenanceInfo.Version)
		}
		if len(s.Plans) == 0 {
			p.add(where, "plans: at least one plan is required")
		}
		planNames := map[string]bool{}
		for j, plan := range s.Plans {
			pwhere := fmt.Sprintf("%s: plan %q", where, plan.ID)
			if plan.ID == "" {
				pwhere = fmt.Sprintf("%s: plans[%d]", where, j)
				p.add(pwhere, "id is required")
			} else if other, dup := planIDs[plan.ID]; dup {
				p.add(pwhere, "id %q is used by another plan (of service %q)", plan.ID, other)
			}
			planIDs[plan.ID] = s.ID
			checkName(&p, pwhere, plan.Name, planNames, "plan of this service")
			checkPlan(&p, pwhere, plan)
		}
	}
	return p.err()
}

// checkName reports an empty name or one already in seen.
func checkName(p *problems, where, name string, seen map[string]bool, other string) {
	switch {
	case name == "":
		p.add(where, "name is required")
	case seen[name]:
		p.add(where, "name %q is used by another %s", name, other)
	}
	seen[name] = true
}

// checkPlan reports a plan's fields out of range.
func checkPlan(p *problems, where string, plan Plan) {
	if plan.Description == "" {
		p.add(where, "description is required")
	}
	if !plan.Tier.valid() {
		p.add(where, "tier %q is not one of %s, %s, %s", plan.Tier, TierSandbox, TierStarter, TierBusiness)
	}
	for _, f := range []struct {
		field string
		value int
	}{
		{"memory_mib", plan.MemoryMiB},
		{"cpu_mhz", plan.CPUMHz},
		{"disk_mib", plan.DiskMiB},
		{"nodes", plan.Nodes},
		{"gateways", plan.Gateways},
		{"max_connections", plan.MaxConnections},
	} {
		if f.value <= 0 {
			p.add(where, "%s must be greater than 0, got %d", f.field, f.value)
		}
	}
	if n := plan.AutovacuumNaptime; n < time.Second || n > time.Hour || n%time.Second != 0 {
		p.add(where, "autovacuum_naptime_s must be from 1 to 3600, got %v", n.Seconds())
	}
	b := plan.Backups
	for _, f := range []struct {
		field string
		value int
	}{
		{"backups.daily_kept", b.DailyKept},
		{"backups.weekly_kept", b.WeeklyKept},
		{"backups.monthly_kept", b.MonthlyKept},
		{"backups.manual_kept", b.ManualKept},
		{"backups.pitr_days", b.PITRDays},
	} {
		if f.value < 0 {
			p.add(where, "%s must be 0 or more, got %d", f.field, f.value)
		}
	}
	if b.Daily && b.DailyKept == 0 {
		p.add(where, "backups.daily_kept must be greater than 0 when backups.daily is true")
	}
	for k, cost := range plan.Metadata.Costs {
		if cost.Unit == "" {
			p.add(where, "metadata.costs[%d].unit is required (e.g. MONTHLY)", k)
		}
		if len(cost.Amount) == 0 {
			p.add(where, "metadata.costs[%d].amount needs at least one currency (e.g. eur: 10)", k)
		}
		for _, currency := range slices.Sorted(maps.Keys(cost.Amount)) {
			amount := cost.Amount[currency]
			if amount < 0 {
				p.add(where, "metadata.costs[%d].amount.%s must be 0 or more, got %g", k, currency, amount)
			}
			if plan.Free && amount > 0 {
				p.add(where, "metadata.costs[%d].amount.%s is %g but the plan is free", k, currency, amount)
			}
		}
	}
}
