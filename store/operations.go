package store

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
)

// OperationKind is what an operation does (OSB 2.17 asynchronous operations).
type OperationKind string

// Operation kinds.
const (
	KindProvision   OperationKind = "provision"
	KindUpdate      OperationKind = "update"
	KindDeprovision OperationKind = "deprovision"
	KindRestore     OperationKind = "restore" // a dump restored into the instance; Parameters hold "backup_id"
)

// OperationState is the OSB last_operation state.
type OperationState string

// Operation states, spelled as OSB 2.17 "Polling Last Operation" spells them.
const (
	InProgress OperationState = "in progress"
	Succeeded  OperationState = "succeeded"
	Failed     OperationState = "failed"
)

// Origin is the decoded X-Broker-API-Originating-Identity header: the
// platform ("cloudfoundry", "kubernetes") and its JSON identity object (OSB
// 2.17 "Originating Identity"). Zero when the platform did not send one.
type Origin struct {
	Platform string
	Identity json.RawMessage
}

// Operation is one asynchronous operation on an instance.
type Operation struct {
	ID          string // returned to the platform as OSB "operation"
	InstanceID  string
	Kind        OperationKind
	State       OperationState
	Description string          // the current step in words, or the failure a user can act on
	PlanID      string          // the plan the instance runs once the operation succeeds
	Parameters  json.RawMessage // the request's parameters, as validated
	Origin      Origin          // who asked
	CreatedAt   time.Time
	UpdatedAt   time.Time
	FinishedAt  *time.Time
}

const operationColumns = `id, instance_id, kind, state, description, plan_id, parameters, originating_platform,
	originating_identity, created_at, updated_at, finished_at`

func scanOperation(row pgx.Row) (Operation, error) {
	var o Operation
	err := row.Scan(&o.ID, &o.InstanceID, &o.Kind, &o.State, &o.Description, &o.PlanID, &o.Parameters,
		&o.Origin.Platform, &o.Origin.Identity, &o.CreatedAt, &o.UpdatedAt, &o.FinishedAt)
	return o, notFound(err)
}

func insertOperation(ctx context.Context, tx pgx.Tx, op Operation) error {
	_, err := tx.Exec(ctx, `
		INSERT INTO operations (id, instance_id, kind, state, description, plan_id, parameters, originating_platform, originating_identity)
		VALUES ($1, $2, $3, 'in progress', $4, $5, $6, $7, $8)`,
		op.ID, op.InstanceID, op.Kind, op.Description, op.PlanID, jsonOrEmpty(op.Parameters), op.Origin.Platform, jsonOrNull(op.Origin.Identity))
	if isUniqueViolation(err, "operations_one_in_flight") {
		return ErrOperationInFlight
	}
	if err != nil {
		return fmt.Errorf("insert operation: %w", err)
	}
	return nil
}

// StartOperation records op (in progress) on an existing, live instance and
// calls enqueue in the same transaction. Errors: ErrNotFound (no live
// instance), ErrOperationInFlight (ErrRepairInFlight among them).
func (s *Instances) StartOperation(ctx context.Context, op Operation, enqueue EnqueueFunc) error {
	return s.inTx(ctx, func(tx pgx.Tx) error {
		var id string
		err := tx.QueryRow(ctx, `SELECT id FROM instances WHERE id = $1 AND deprovisioned_at IS NULL FOR UPDATE`, op.InstanceID).Scan(&id)
		if err != nil {
			return notFound(err)
		}
		if err := noRepairInFlight(ctx, tx, op.InstanceID); err != nil {
			return err
		}
		if err := insertOperation(ctx, tx, op); err != nil {
			return err
		}
		if err := announce(ctx, tx, op.InstanceID); err != nil {
			return err
		}
		return enqueue(ctx, tx, op.ID)
	})
}

// GetOperation returns the operation with id. Errors: ErrNotFound.
func (s *Instances) GetOperation(ctx context.Context, id string) (Operation, error) {
	return scanOperation(s.pool.QueryRow(ctx, `SELECT `+operationColumns+` FROM operations WHERE id = $1`, id))
}

// LatestOperation returns the instance's most recent operation. Errors: ErrNotFound.
func (s *Instances) LatestOperation(ctx context.Context, instanceID string) (Operation, error) {
	return scanOperation(s.pool.QueryRow(ctx, `SELECT `+operationColumns+` FROM operations
		WHERE instance_id = $1 ORDER BY created_at DESC, id DESC LIMIT 1`, instanceID))
}

// SetProgress records the current step of an operation still in progress.
func (s *Instances) SetProgress(ctx context.Context, opID, description string) error {
	_, err := s.pool.Exec(ctx, `WITH changed AS (
			UPDATE operations SET description = $2, updated_at = now()
			WHERE id = $1 AND state = 'in progress' RETURNING instance_id)
		SELECT pg_notify($3, instance_id) FROM changed`, opID, description, notifyChannel)
	if err != nil {
		return fmt.Errorf("record progress: %w", err)
	}
	return nil
}

// FinishOperation ends an in-progress operation with state (Succeeded or
// Failed) and description, and applies its effect on the instance in the same
// transaction: a succeeded update moves the instance to the operation's plan and merges
// the update's parameters into the instance's (backup_time...); a
// succeeded deprovision marks the instance gone and releases its gateway port.
// Finishing an operation that already finished changes nothing.
func (s *Instances) FinishOperation(ctx context.Context, opID string, state OperationState, description string) error {
	return s.inTx(ctx, func(tx pgx.Tx) error {
		op, err := scanOperation(tx.QueryRow(ctx, `UPDATE operations
			SET state = $2, description = $3, updated_at = now(), finished_at = now()
			WHERE id = $1 AND state = 'in progress'
			RETURNING `+operationColumns, opID, state, description))
		if err == ErrNotFound {
			return nil
		}
		if err != nil {
			return fmt.Errorf("finish operation: %w", err)
		}
		if err := announce(ctx, tx, op.InstanceID); err != nil {
			return err
		}
		if state != Succeeded {
			return nil
		}
		switch op.Kind {
		case KindUpdate:
			// The update's parameters become the instance's; those that are
			// settings also set their columns. postgres_version is the
			// upgrade's target, not a parameter the instance keeps.
			_, err = tx.Exec(ctx, `UPDATE instances SET plan_id = $2, parameters = parameters || ($3::jsonb - 'postgres_version'),
				postgres_version = CASE WHEN $3::jsonb ? 'postgres_version' THEN $3::jsonb->>'postgres_version' ELSE postgres_version END,
				force_tls = CASE WHEN $3::jsonb ? 'force_tls' THEN ($3::jsonb->>'force_tls')::boolean ELSE force_tls END,
				extensions = CASE WHEN $3::jsonb ? 'extensions'
					THEN ARRAY(SELECT DISTINCT e FROM jsonb_array_elements_text($3::jsonb->'extensions') AS e ORDER BY e)
					ELSE extensions END
				WHERE id = $1`, op.InstanceID, op.PlanID, string(jsonOrEmpty(op.Parameters)))
		case KindDeprovision:
			_, err = tx.Exec(ctx, `UPDATE instances SET deprovisioned_at = now(), gateway_port = NULL, read_only_port = NULL WHERE id = $1`, op.InstanceID)
		}
		if err != nil {
			return fmt.Errorf("apply operation to instance: %w", err)
		}
		return nil
	})
}

// InstanceOperation returns an instance and, in the same query, one of its
// operations: the one with id opID, or its latest when opID is "". found is
// false when the instance has no such operation. Errors: ErrNotFound when
// the instance does not exist. (One round trip: last_operation is polled.)
func (s *Instances) InstanceOperation(ctx context.Context, instanceID, opID string) (Instance, Operation, bool, error) {
	if s.cache == nil {
		return s.queryInstanceOperation(ctx, instanceID, opID)
	}
	st, hit, tok := s.cache.lookup(instanceID, opID)
	if hit {
		return st.inst, st.op, st.found, nil
	}
	inst, op, found, err := s.queryInstanceOperation(ctx, instanceID, opID)
	if err == nil {
		s.cache.store(instanceID, opID, status{inst: inst, op: op, found: found}, tok)
	}
	return inst, op, found, err
}

func (s *Instances) queryInstanceOperation(ctx context.Context, instanceID, opID string) (inst Instance, op Operation, found bool, err error) {
	var (
		oID, oInstance, oKind, oState, oDesc, oPlan, oPlatform *string
		oParams, oIdentity                                     []byte
		oCreated, oUpdated                                     *time.Time
		oFinished                                              *time.Time
	)
	row := s.pool.QueryRow(ctx, `SELECT i.id, i.short_id, i.service_id, i.plan_id, i.organization_guid, i.space_guid,
			i.parameters, i.context, coalesce(i.gateway_port, 0), coalesce(i.read_only_port, 0), i.node_id, i.node_clients, i.force_tls, i.extensions, i.status, i.postgres_version, i.created_at, i.deprovisioned_at,
			o.id, o.instance_id, o.kind, o.state, o.description, o.plan_id, o.parameters, o.originating_platform,
			o.originating_identity, o.created_at, o.updated_at, o.finished_at
		FROM instances i
		LEFT JOIN LATERAL (SELECT * FROM operations
			WHERE instance_id = i.id AND ($2 = '' OR id = $2)
			ORDER BY created_at DESC, id DESC LIMIT 1) o ON true
		WHERE i.id = $1`, instanceID, opID)
	err = row.Scan(&inst.ID, &inst.ShortID, &inst.ServiceID, &inst.PlanID, &inst.OrganizationGUID, &inst.SpaceGUID,
		&inst.Parameters, &inst.Context, &inst.GatewayPort, &inst.ReadOnlyPort, &inst.NodeID, &inst.NodeClients, &inst.ForceTLS, &inst.Extensions, &inst.Status, &inst.PostgresVersion, &inst.CreatedAt, &inst.DeprovisionedAt,
		&oID, &oInstance, &oKind, &oState, &oDesc, &oPlan, &oParams, &oPlatform, &oIdentity, &oCreated, &oUpdated, &oFinished)
	if err != nil {
		return Instance{}, Operation{}, false, notFound(err)
	}
	if oID == nil {
		return inst, Operation{}, false, nil
	}
	op = Operation{ID: *oID, InstanceID: *oInstance, Kind: OperationKind(*oKind), State: OperationState(*oState),
		Description: *oDesc, PlanID: *oPlan, Parameters: oParams, Origin: Origin{Platform: *oPlatform, Identity: oIdentity},
		CreatedAt: *oCreated, UpdatedAt: *oUpdated, FinishedAt: oFinished}
	return inst, op, true, nil
}
