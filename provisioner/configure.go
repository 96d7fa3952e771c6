package provisioner

import (
	"context"
	"slices"
	"strings"

	"github.com/pgbroker/pgbroker/naming"
	"github.com/pgbroker/pgbroker/pgadmin"
)

// Configure brings an instance's settings from those of from to those of to:
// Force TLS (pg_hba.conf, rendered from the node Variable and reloaded on
// SIGHUP: no restart), then the extensions of its database (DROP EXTENSION
// for those from has and to has not, CREATE EXTENSION … CASCADE for to's). The
// node job must already carry to's shared_preload_libraries (Provision or
// Resize with to). Idempotent. Errors wrap extensions.ErrExtensionInUse when a
// dropped extension is still used.
func (p *Provisioner) Configure(ctx context.Context, from, to Instance, progress Progress) error {
	password, err := p.conn.ReadSecret(ctx, naming.NodesSecretPath(to.ShortID), "admin_password")
	if err != nil {
		return err
	}
	admin, err := p.conn.Admin(ctx, to, password)
	if err != nil {
		return err
	}
	if err := p.certs.SetForceTLS(ctx, to.ShortID, to.ForceTLS, admin, progress); err != nil {
		return err
	}
	names := pgadmin.NamesOf(to.ShortID)
	var drop []string
	for _, e := range from.Extensions {
		if !slices.Contains(to.Extensions, e) {
			drop = append(drop, e)
		}
	}
	if len(drop) > 0 {
		progress("dropping extensions " + strings.Join(drop, ", "))
		if err := admin.DisableExtensions(ctx, names, drop); err != nil {
			return err
		}
	}
	if len(to.Extensions) > 0 {
		progress("creating extensions " + strings.Join(to.Extensions, ", "))
		if err := admin.EnableExtensions(ctx, names, to.Extensions); err != nil {
			return err
		}
	}
	return nil
}
