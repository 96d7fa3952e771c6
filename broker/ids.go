package broker

import (
	"github.com/pgbroker/pgbroker/store"
)

// checkIDs answers 400 naming the field when a request about an existing
// instance carries a service_id or plan_id that is not the instance's (OSB
// 2.17: bind, unbind and deprovision "MUST be the ID of the Service Offering
// / Service Plan" being used; update's plan_id, optional, "MUST be the ID of
// a Service Plan from the Service Offering"). An empty value was not sent:
// brokerapi has already refused a missing required one, so it passes here.
// service_id must be the instance's own; plan_id must be the instance's
// current plan or a plan of its service in the catalog; either may be given
// by its catalog id or its published GUID (a platform may
// still hold the plan of before an update). The check runs before anything
// is read from an instance or recorded, so a refused request changes nothing.
func (b *Broker) checkIDs(inst store.Instance, serviceID, planID string) error {
	if serviceID != "" && serviceID != inst.ServiceID {
		svc, ok := b.catalog.Service(serviceID)
		switch {
		case !ok:
			return badRequest("service_id %q is not a service of this broker's catalog", serviceID)
		case svc.ID != inst.ServiceID:
			return badRequest("service_id %q is not the service of instance %s", serviceID, inst.ID)
		}
	}
	if planID == "" || planID == inst.PlanID {
		return nil
	}
	svc, _, ok := b.catalog.Plan(planID)
	switch {
	case !ok:
		return badRequest("plan_id %q is not a plan of this broker's catalog", planID)
	case svc.ID != inst.ServiceID:
		return badRequest("plan_id %q is not a plan of service_id %q", planID, inst.ServiceID)
	}
	return nil
}

// published returns the ids GET /v2/catalog shows for a stored service and
// plan id (GUIDs after catalog.PublishGUIDs); ids no longer in the catalog
// are returned as stored.
func (b *Broker) published(serviceID, planID string) (string, string) {
	if svc, ok := b.catalog.Service(serviceID); ok {
		serviceID = svc.OSBID()
	}
	if _, plan, ok := b.catalog.Plan(planID); ok {
		planID = plan.OSBID()
	}
	return serviceID, planID
}
