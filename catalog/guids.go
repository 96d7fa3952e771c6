package catalog

import (
	"github.com/google/uuid"
)

// guidNamespace is the UUIDv5 namespace of pgbroker's catalog GUIDs (itself
// uuid.NewSHA1(uuid.NameSpaceURL, "https://github.com/pgbroker/pgbroker/catalog")).
var guidNamespace = uuid.NewSHA1(uuid.NameSpaceURL, []byte("https://github.com/pgbroker/pgbroker/catalog"))

// GUID returns the id a deployment publishes for a service or plan whose
// catalog id is id: a UUIDv5 of the deployment's name (PGBROKER_BROKER_NAME)
// and id, the same at every start and different for every deployment.
func GUID(deployment, id string) string {
	return uuid.NewSHA1(guidNamespace, []byte(deployment+"\x00"+id)).String()
}

// PublishGUIDs makes GET /v2/catalog publish every service and plan under
// GUID(deployment, id) instead of its catalog id, so that two deployments
// registered on one platform (Cloud Foundry, Kubernetes Service Catalog,
// where ids must be unique across brokers) do not collide. Plan and
// Service still find a service or plan by either id, so instances that
// were created under the catalog ids keep working; the state database
// keeps catalog ids. Call it before BrokerServices and before any
// concurrent use.
func (c *Catalog) PublishGUIDs(deployment string) {
	for i := range c.Services {
		s := &c.Services[i]
		s.GUID = GUID(deployment, s.ID)
		for j := range s.Plans {
			s.Plans[j].GUID = GUID(deployment, s.Plans[j].ID)
		}
	}
}

// OSBID is the id GET /v2/catalog publishes for the service: its GUID when
// PublishGUIDs set one, else its catalog id.
func (s Service) OSBID() string {
	if s.GUID != "" {
		return s.GUID
	}
	return s.ID
}

// Is reports whether id names the service: its catalog id or its GUID.
func (s Service) Is(id string) bool { return id != "" && (id == s.ID || id == s.GUID) }

// OSBID is the id GET /v2/catalog publishes for the plan: its GUID when
// PublishGUIDs set one, else its catalog id.
func (p Plan) OSBID() string {
	if p.GUID != "" {
		return p.GUID
	}
	return p.ID
}
