package catalog

import "fmt"

// PlanChangeError says why an instance may not move to a plan. The broker
// answers it with 422 Unprocessable Entity and Msg as the description.
type PlanChangeError struct {
	Msg string // a sentence a user can act on
}

// Error returns Msg.
func (e *PlanChangeError) Error() string { return e.Msg }

// CheckPlanChange says whether an instance on plan from may move to plan
// to, judged on plan data only; whether the data fits the new disk is
// checked elsewhere, against the live instance. It returns nil when the
// change is allowed, including from and to being the same plan, and a
// *PlanChangeError otherwise.
//
// Rule for now: both plans must be single-node (Nodes == 1). Moving to or
// from a highly available (Business) plan needs a migration between a
// single node and a Patroni cluster (seeds: plan changes), not built yet.
func CheckPlanChange(from, to Plan) error {
	if from.ID == to.ID {
		return nil
	}
	if from.Nodes == 1 && to.Nodes == 1 {
		return nil
	}
	return &PlanChangeError{Msg: fmt.Sprintf(
		"cannot change plan from %s to %s: changes to or from highly available (Business) plans are not available yet. "+
			"Plans with a single node (Sandbox, Starter) can be changed between each other; to reach another plan, "+
			"create a new instance on it and move your data with a dump and restore",
		planLabel(from), planLabel(to))}
}

func planLabel(p Plan) string {
	if p.Metadata.DisplayName != "" {
		return fmt.Sprintf("%q (%s)", p.ID, p.Metadata.DisplayName)
	}
	return fmt.Sprintf("%q", p.ID)
}
