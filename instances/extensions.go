package instances

import (
	"context"

	"github.com/pgbroker/pgbroker/extensions"
	"github.com/pgbroker/pgbroker/store"
)

// The extensions of a stored instance's database, for the management API
// (mgmtapi.Extensions): each call converts the instance with Target and asks
// the provisioner. Names must have passed extensions.CheckExtensions; those
// needing shared_preload_libraries change through an update operation
// instead (the node restarts).

// Extensions lists the extensions created in the instance's database
// (pg_extension, plpgsql excluded), by name.
func (s *Service) Extensions(ctx context.Context, i store.Instance) ([]extensions.InstalledExtension, error) {
	return s.p.Extensions(ctx, s.target(i))
}

// EnableExtensions creates the extensions names (CREATE EXTENSION IF NOT
// EXISTS … CASCADE). Idempotent.
func (s *Service) EnableExtensions(ctx context.Context, i store.Instance, names []string) error {
	return s.p.EnableExtensions(ctx, s.target(i), names)
}

// DisableExtensions drops the extensions names, without CASCADE. Errors
// wrap extensions.ErrExtensionInUse when objects depend on one. Idempotent.
func (s *Service) DisableExtensions(ctx context.Context, i store.Instance, names []string) error {
	return s.p.DisableExtensions(ctx, s.target(i), names)
}
