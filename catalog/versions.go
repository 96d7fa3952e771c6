package catalog

import (
	"fmt"

	"github.com/pgbroker/pgbroker/pgversion"
)

// OfferPostgres makes newest the version every service's plans name in
// maintenance_info (OSB 2.17 "Maintenance Info Object": version is semver,
// "15.20.0"), replacing the catalog file's: what new instances get, and what
// an update carrying it upgrades an older instance to (cf update-service
// --upgrade). The description says what the upgrade does. Call it before
// the catalog is shared.
func (c *Catalog) OfferPostgres(newest pgversion.Version) {
	for i := range c.Services {
		c.Services[i].MaintenanceInfo = MaintenanceInfo{
			Version: newest.Semver(),
			Description: fmt.Sprintf("PostgreSQL %s. Upgrading from an older %d.x restarts the node of a Sandbox or Starter "+
				"instance on the new binaries (a short interruption); a Business cluster rolls, its standby first, then one "+
				"switchover. Data, DATABASE_URL and bindings stay.", newest, newest.Major),
		}
	}
}
