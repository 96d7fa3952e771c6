package servercert

import (
	"context"
	"fmt"
	"strconv"
	"time"

	"github.com/hashicorp/nomad/api"

	"github.com/pgbroker/pgbroker/naming"
)

// SetForceTLS writes force_tls into the node Variable and waits until
// PostgreSQL has reloaded a pg_hba.conf that says the same.
func (s *Issuer) SetForceTLS(ctx context.Context, short string, forceTLS bool, admin Server, progress func(string)) error {
	before, err := admin.HBA(ctx)
	if err != nil {
		return err
	}
	want := strconv.FormatBool(forceTLS)
	changed := false
	if _, err := s.nomad.UpdateVariable(ctx, naming.NodesSecretPath(short), func(items api.VariableItems) bool {
		if items[ItemForceTLS] == want {
			return false
		}
		items[ItemForceTLS], changed = want, true
		return true
	}); err != nil {
		return err
	}
	if changed && forceTLS {
		progress("refusing connections without TLS")
	} else if changed {
		progress("accepting connections without TLS")
	}
	for {
		hba, err := admin.HBA(ctx)
		if err == nil && hba.TLSOnly() == forceTLS && !hba.LoadedAt.Before(hba.FileModified) && (!changed || hba.LoadedAt.After(before.LoadedAt)) {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("waiting for PostgreSQL to reload pg_hba.conf with force_tls=%s: %w", want, ctx.Err())
		case <-time.After(s.cfg.Poll):
		}
	}
}
