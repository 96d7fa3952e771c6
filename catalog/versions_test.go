package catalog

import (
	"strings"
	"testing"

	"github.com/pgbroker/pgbroker/pgversion"
)

func TestOfferPostgresPutsTheNewestVersionInEveryPlansMaintenanceInfo(t *testing.T) {
	c, err := Default()
	if err != nil {
		t.Fatal(err)
	}
	c.OfferPostgres(pgversion.Version{Major: 15, Minor: 20})
	services := c.BrokerServices()
	if len(services) == 0 {
		t.Fatal("no services")
	}
	for _, s := range services {
		for _, p := range s.Plans {
			mi := p.MaintenanceInfo
			if mi == nil || mi.Version != "15.20.0" || !strings.HasPrefix(mi.Description, "PostgreSQL 15.20.") ||
				!strings.Contains(mi.Description, "restarts") {
				t.Errorf("plan %s: maintenance_info %+v, want version 15.20.0 and a description of the upgrade", p.ID, mi)
			}
		}
	}
}
