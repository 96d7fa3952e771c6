package catalog

import (
	"maps"

	"github.com/pivotal-cf/brokerapi/v10/domain"
)

// BrokerServices returns the catalog as brokerapi v10 services, the body of
// GET /v2/catalog (OSB v2.17 "Catalog Management"), under the ids OSBID
// gives (catalog ids, or GUIDs after PublishGUIDs). Each plan carries its
// free flag, the service's bindable flag and maintenance_info, its metadata
// (display name, bullets, costs) and its schemas: service_instance create
// (Schemas.Provision) and update (Schemas.Update), service_binding create
// (Schemas.Bind). The result is a deep copy; changing it leaves c as is.
func (c *Catalog) BrokerServices() []domain.Service {
	services := make([]domain.Service, 0, len(c.Services))
	for _, s := range c.Services {
		ds := domain.Service{
			ID:                   s.OSBID(),
			Name:                 s.Name,
			Description:          s.Description,
			Bindable:             s.Bindable,
			InstancesRetrievable: s.InstancesRetrievable,
			BindingsRetrievable:  s.BindingsRetrievable,
			Tags:                 append([]string(nil), s.Tags...),
			PlanUpdatable:        s.PlanUpdateable,
			Metadata: &domain.ServiceMetadata{
				DisplayName:         s.Metadata.DisplayName,
				ImageUrl:            s.Metadata.ImageURL,
				LongDescription:     s.Metadata.LongDescription,
				ProviderDisplayName: s.Metadata.ProviderDisplayName,
				DocumentationUrl:    s.Metadata.DocumentationURL,
				SupportUrl:          s.Metadata.SupportURL,
			},
			Plans: make([]domain.ServicePlan, 0, len(s.Plans)),
		}
		for _, p := range s.Plans {
			ds.Plans = append(ds.Plans, brokerPlan(s, p))
		}
		services = append(services, ds)
	}
	return services
}

func brokerPlan(s Service, p Plan) domain.ServicePlan {
	costs := make([]domain.ServicePlanCost, 0, len(p.Metadata.Costs))
	for _, c := range p.Metadata.Costs {
		costs = append(costs, domain.ServicePlanCost{Unit: c.Unit, Amount: maps.Clone(c.Amount)})
	}
	return domain.ServicePlan{
		ID:          p.OSBID(),
		Name:        p.Name,
		Description: p.Description,
		Free:        domain.FreeValue(p.Free),
		Bindable:    domain.BindableValue(s.Bindable),
		Metadata: &domain.ServicePlanMetadata{
			DisplayName: p.Metadata.DisplayName,
			Bullets:     append([]string(nil), p.Metadata.Bullets...),
			Costs:       costs,
		},
		Schemas: &domain.ServiceSchemas{
			Instance: domain.ServiceInstanceSchema{
				Create: domain.Schema{Parameters: copyObject(p.Schemas.Provision)},
				Update: domain.Schema{Parameters: copyObject(p.Schemas.Update)},
			},
			Binding: domain.ServiceBindingSchema{
				Create: domain.Schema{Parameters: copyObject(p.Schemas.Bind)},
			},
		},
		MaintenanceInfo: &domain.MaintenanceInfo{
			Version:     s.MaintenanceInfo.Version,
			Description: s.MaintenanceInfo.Description,
		},
	}
}
