package store

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
)

// Instances are the service instances and their operations (operations.go),
// from Store.Instances. Every change of an instance or of its operations is
// one transaction that also announces the instance to the status caches;
// CreateInstance and StartOperation enqueue the operation's job in it too.
type Instances struct{ *db }

// Instance is one OSB service instance (OSB 2.17 "Provisioning").
type Instance struct {
	ID               string          // OSB instance_id, as the platform sent it
	ShortID          string          // 12 hex characters derived from ID: names Nomad jobs, database and roles
	ServiceID        string          // OSB service_id
	PlanID           string          // the plan the instance runs now; an update changes it when it succeeds
	OrganizationGUID string          // OSB organization_guid
	SpaceGUID        string          // OSB space_guid
	Parameters       json.RawMessage // provision parameters, as validated
	Context          json.RawMessage // OSB context object
	GatewayPort      int             // static gateway port, stable for the instance's life; 0 once released
	ReadOnlyPort     int             // static port of the gateways' read-only listener (plans with standbys); 0 until allocated and once released
	NodeID           string          // Nomad node the data directory lives on; "" until first placed
	// NodeClients is, for plans with standbys, the Nomad node holding each
	// node's data directory by node index (task group node-<index>), as
	// last seen running; nil when not known.
	NodeClients     []string
	ForceTLS        bool     // only TLS connections may log in (update parameter force_tls)
	Extensions      []string // extensions the broker manages in the instance's database, sorted
	Status          string   // the reconcile loop's last verdict against Nomad (package reconcile); "" before its first look
	PostgresVersion string   // PostgreSQL major.minor the instance runs ("15.18", pgversion); an upgrade changes it when it succeeds
	CreatedAt       time.Time
	DeprovisionedAt *time.Time // set when deprovisioning succeeded
}

// Gone reports whether the instance was deprovisioned.
func (i Instance) Gone() bool { return i.DeprovisionedAt != nil }

// PortRange is the inclusive range gateway ports are allocated from.
// ReadOnly: CreateInstance also allocates the read-only port (plans with standbys).
type PortRange struct {
	Min, Max int
	ReadOnly bool
}

const instanceColumns = `id, short_id, service_id, plan_id, organization_guid, space_guid, parameters, context,
	coalesce(gateway_port, 0), coalesce(read_only_port, 0), node_id, node_clients, force_tls, extensions, status, postgres_version, created_at, deprovisioned_at`

func scanInstance(row pgx.Row) (Instance, error) {
	var i Instance
	err := row.Scan(&i.ID, &i.ShortID, &i.ServiceID, &i.PlanID, &i.OrganizationGUID, &i.SpaceGUID,
		&i.Parameters, &i.Context, &i.GatewayPort, &i.ReadOnlyPort, &i.NodeID, &i.NodeClients, &i.ForceTLS, &i.Extensions, &i.Status, &i.PostgresVersion, &i.CreatedAt, &i.DeprovisionedAt)
	return i, notFound(err)
}

// CreateInstance records a new instance and its provision operation, allocates
// the lowest free gateway port of ports (and the next free one as its
// read-only port when ports.ReadOnly), and calls enqueue, all in one
// transaction: either everything is recorded or nothing is. It returns the
// instance as stored. Errors: ErrInstanceExists (same id, or a short id
// collision), ErrNoFreePort.
func (s *Instances) CreateInstance(ctx context.Context, in Instance, op Operation, ports PortRange, enqueue EnqueueFunc) (Instance, error) {
	var out Instance
	err := s.inTx(ctx, func(tx pgx.Tx) error {
		// Serialise port allocation between concurrent provisions.
		if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock(hashtext('pgbroker.gateway_port'))`); err != nil {
			return fmt.Errorf("lock gateway ports: %w", err)
		}
		port, err := freePort(ctx, tx, ports, 0)
		if err != nil {
			return err
		}
		var readOnly *int
		if ports.ReadOnly {
			p, err := freePort(ctx, tx, ports, port)
			if err != nil {
				return err
			}
			readOnly = &p
		}
		row := tx.QueryRow(ctx, `
			INSERT INTO instances (id, short_id, service_id, plan_id, organization_guid, space_guid, parameters, context, gateway_port,
				force_tls, extensions, read_only_port, postgres_version)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)
			RETURNING `+instanceColumns,
			in.ID, in.ShortID, in.ServiceID, in.PlanID, in.OrganizationGUID, in.SpaceGUID,
			jsonOrEmpty(in.Parameters), jsonOrEmpty(in.Context), port, in.ForceTLS, textArray(in.Extensions), readOnly, in.PostgresVersion)
		if out, err = scanInstance(row); err != nil {
			if isUniqueViolation(err, "instances_pkey") || isUniqueViolation(err, "instances_short_id_key") {
				return ErrInstanceExists
			}
			return fmt.Errorf("insert instance: %w", err)
		}
		op.InstanceID = in.ID
		if err := insertOperation(ctx, tx, op); err != nil {
			return err
		}
		if err := announce(ctx, tx, in.ID); err != nil {
			return err
		}
		return enqueue(ctx, tx, op.ID)
	})
	return out, err
}

// freePort returns the lowest port of ports that no instance uses as its
// gateway or read-only port, other than except (0: none). The caller holds
// the port allocation lock. Errors: ErrNoFreePort.
func freePort(ctx context.Context, tx pgx.Tx, ports PortRange, except int) (int, error) {
	var port int
	err := tx.QueryRow(ctx, `
		SELECT p FROM generate_series($1::int, $2::int) AS p
		WHERE p <> $3 AND NOT EXISTS (SELECT 1 FROM instances WHERE gateway_port = p OR read_only_port = p)
		ORDER BY p LIMIT 1`, ports.Min, ports.Max, except).Scan(&port)
	if err != nil {
		if notFound(err) == ErrNotFound {
			return 0, ErrNoFreePort
		}
		return 0, fmt.Errorf("allocate a port: %w", err)
	}
	return port, nil
}

// EnsureReadOnlyPort allocates the lowest free port of ports as the
// instance's read-only port unless it has one, and returns it. Idempotent.
// Errors: ErrNotFound, ErrNoFreePort.
func (s *Instances) EnsureReadOnlyPort(ctx context.Context, instanceID string, ports PortRange) (int, error) {
	var port int
	err := s.inTx(ctx, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock(hashtext('pgbroker.gateway_port'))`); err != nil {
			return fmt.Errorf("lock gateway ports: %w", err)
		}
		var have *int
		if err := tx.QueryRow(ctx, `SELECT read_only_port FROM instances WHERE id = $1`, instanceID).Scan(&have); err != nil {
			return notFound(err)
		}
		if have != nil {
			port = *have
			return nil
		}
		var err error
		if port, err = freePort(ctx, tx, ports, 0); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `UPDATE instances SET read_only_port = $2 WHERE id = $1`, instanceID, port); err != nil {
			return fmt.Errorf("record read-only port: %w", err)
		}
		return announce(ctx, tx, instanceID)
	})
	return port, err
}

// GetInstance returns the instance with id, deprovisioned ones included
// (check Gone). Errors: ErrNotFound.
func (s *Instances) GetInstance(ctx context.Context, id string) (Instance, error) {
	return scanInstance(s.pool.QueryRow(ctx, `SELECT `+instanceColumns+` FROM instances WHERE id = $1`, id))
}

// SetNodeID records the Nomad node that holds the instance's data directory,
// so later job versions are pinned to it.
func (s *Instances) SetNodeID(ctx context.Context, instanceID, nodeID string) error {
	_, err := s.pool.Exec(ctx, `WITH changed AS (UPDATE instances SET node_id = $2 WHERE id = $1 RETURNING id)
		SELECT pg_notify($3, id) FROM changed`, instanceID, nodeID, notifyChannel)
	if err != nil {
		return fmt.Errorf("record node of instance: %w", err)
	}
	return nil
}

// SetNodeClients records the Nomad node holding each node's data
// directory of an instance whose plan has standbys, by node index (nil: not
// known), so that its node job can be registered again with each node on
// its own data.
func (s *Instances) SetNodeClients(ctx context.Context, instanceID string, clients []string) error {
	_, err := s.pool.Exec(ctx, `UPDATE instances SET node_clients = $2 WHERE id = $1`, instanceID, textArray(clients))
	if err != nil {
		return fmt.Errorf("record the nodes' clients of instance: %w", err)
	}
	return nil
}

// SetStatus records the reconcile loop's verdict on the instance
// ("running", "repairing", "degraded: ...") and announces it to the status
// caches when it changed.
func (s *Instances) SetStatus(ctx context.Context, instanceID, status string) error {
	_, err := s.pool.Exec(ctx, `WITH changed AS (UPDATE instances SET status = $2 WHERE id = $1 AND status <> $2 RETURNING id)
		SELECT pg_notify($3, id) FROM changed`, instanceID, status, notifyChannel)
	if err != nil {
		return fmt.Errorf("record status of instance: %w", err)
	}
	return nil
}

// SetExtensions records the extensions the broker manages in the instance's
// database (after the management API enabled or disabled one that needs no
// restart), and announces the change to the status caches.
func (s *Instances) SetExtensions(ctx context.Context, instanceID string, extensions []string) error {
	_, err := s.pool.Exec(ctx, `WITH changed AS (UPDATE instances SET extensions = $2 WHERE id = $1 RETURNING id)
		SELECT pg_notify($3, id) FROM changed`, instanceID, textArray(extensions), notifyChannel)
	if err != nil {
		return fmt.Errorf("record extensions of instance: %w", err)
	}
	return nil
}

// LiveInstances returns every instance not deprovisioned whose provisioning
// succeeded, by id.
func (s *Instances) LiveInstances(ctx context.Context) ([]Instance, error) {
	rows, err := s.pool.Query(ctx, `SELECT `+instanceColumns+` FROM instances i
		WHERE deprovisioned_at IS NULL
		  AND EXISTS (SELECT 1 FROM operations o WHERE o.instance_id = i.id AND o.kind = 'provision' AND o.state = 'succeeded')
		ORDER BY id`)
	if err != nil {
		return nil, fmt.Errorf("list live instances: %w", err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (Instance, error) { return scanInstance(r) })
	if err != nil {
		return nil, fmt.Errorf("list live instances: %w", err)
	}
	return out, nil
}

// textArray never gives PostgreSQL a NULL array.
func textArray(a []string) []string {
	if a == nil {
		return []string{}
	}
	return a
}

func jsonOrEmpty(raw json.RawMessage) json.RawMessage {
	if len(raw) == 0 || string(raw) == "null" {
		return json.RawMessage(`{}`)
	}
	return raw
}

func jsonOrNull(raw json.RawMessage) any {
	if len(raw) == 0 {
		return nil
	}
	return raw
}

// UndeletedShortIDs returns the short id of every instance not
// deprovisioned, whatever its operations (provisioning, failed or live),
// sorted: every instance that may hold secrets in Nomad.
func (s *Instances) UndeletedShortIDs(ctx context.Context) ([]string, error) {
	rows, err := s.pool.Query(ctx, `SELECT short_id FROM instances WHERE deprovisioned_at IS NULL ORDER BY short_id`)
	if err != nil {
		return nil, fmt.Errorf("list instances not deprovisioned: %w", err)
	}
	ids, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return nil, fmt.Errorf("list instances not deprovisioned: %w", err)
	}
	return ids, nil
}
