package store

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
)

// Bindings are the service bindings, from Store.Bindings.
type Bindings struct{ *db }

// Binding is one OSB service binding: one login role on the instance.
type Binding struct {
	InstanceID string
	ID         string // OSB binding_id
	RoleName   string // the PostgreSQL login role
	ReadOnly   bool
	Parameters json.RawMessage // bind parameters, as validated
	AppGUID    string
	Origin     Origin // who asked for the binding
	CreatedAt  time.Time
}

const bindingColumns = `instance_id, id, role_name, read_only, parameters, app_guid, originating_platform,
	originating_identity, created_at`

func scanBinding(row pgx.Row) (Binding, error) {
	var b Binding
	err := row.Scan(&b.InstanceID, &b.ID, &b.RoleName, &b.ReadOnly, &b.Parameters, &b.AppGUID, &b.Origin.Platform,
		&b.Origin.Identity, &b.CreatedAt)
	return b, notFound(err)
}

// CreateBinding records b once its role exists. Recording the same binding
// again returns the stored one unchanged (first write wins).
func (s *Bindings) CreateBinding(ctx context.Context, b Binding) (Binding, error) {
	_, err := s.pool.Exec(ctx, `INSERT INTO bindings (instance_id, id, role_name, read_only, parameters, app_guid,
		originating_platform, originating_identity)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT (instance_id, id) DO NOTHING`,
		b.InstanceID, b.ID, b.RoleName, b.ReadOnly, jsonOrEmpty(b.Parameters), b.AppGUID, b.Origin.Platform, jsonOrNull(b.Origin.Identity))
	if err != nil {
		return Binding{}, fmt.Errorf("insert binding: %w", invalidValue(err))
	}
	return s.GetBinding(ctx, b.InstanceID, b.ID)
}

// GetBinding returns one binding. Errors: ErrNotFound.
func (s *Bindings) GetBinding(ctx context.Context, instanceID, bindingID string) (Binding, error) {
	return scanBinding(s.pool.QueryRow(ctx, `SELECT `+bindingColumns+` FROM bindings WHERE instance_id = $1 AND id = $2`,
		instanceID, bindingID))
}

// ListBindings returns the instance's bindings, oldest first.
func (s *Bindings) ListBindings(ctx context.Context, instanceID string) ([]Binding, error) {
	rows, err := s.pool.Query(ctx, `SELECT `+bindingColumns+` FROM bindings WHERE instance_id = $1 ORDER BY created_at, id`, instanceID)
	if err != nil {
		return nil, fmt.Errorf("list bindings: %w", err)
	}
	return pgx.CollectRows(rows, func(r pgx.CollectableRow) (Binding, error) { return scanBinding(r) })
}

// DeleteBinding forgets a binding. Deleting a missing one is not an error.
func (s *Bindings) DeleteBinding(ctx context.Context, instanceID, bindingID string) error {
	_, err := s.pool.Exec(ctx, `DELETE FROM bindings WHERE instance_id = $1 AND id = $2`, instanceID, bindingID)
	if err != nil {
		return fmt.Errorf("delete binding: %w", err)
	}
	return nil
}
