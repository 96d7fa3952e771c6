package instances

import (
	"context"

	"github.com/pgbroker/pgbroker/extensions"
	"github.com/pgbroker/pgbroker/store"
)

// The extensions of a stored instance's database, for the management API
// (mgmtapi.Extensions): each call converts the instance with Target and
// connects as its superuser (provisioner.InstanceAdmin). Names must have passed extensions.CheckExtensions; those
// needing shared_preload_libraries change through an update operation
// instead (the node restarts).

// Extensions lists the extensions created in the instance's database
// (pg_extension, plpgsql excluded), by name.
func (s *Service) Extensions(ctx context.Context, i store.Instance) ([]extensions.InstalledExtension, error) {
	a, n, err := s.admin(ctx, i)
	if err != nil {
		return nil, err
	}
	return a.Extensions(ctx, n)
}

// EnableExtensions creates the extensions names (CREATE EXTENSION IF NOT
// EXISTS … CASCADE). Idempotent.
func (s *Service) EnableExtensions(ctx context.Context, i store.Instance, names []string) error {
	a, n, err := s.admin(ctx, i)
	if err != nil {
		return err
	}
	return a.EnableExtensions(ctx, n, names)
}

// DisableExtensions drops the extensions names, without CASCADE. Errors
// wrap extensions.ErrExtensionInUse when objects depend on one. Idempotent.
func (s *Service) DisableExtensions(ctx context.Context, i store.Instance, names []string) error {
	a, n, err := s.admin(ctx, i)
	if err != nil {
		return err
	}
	return a.DisableExtensions(ctx, n, names)
}
