// Package store keeps the broker's own state in PostgreSQL (pgx/v5): service
// instances and their operations, bindings, backups. Open gives the Store;
// its Instances, Bindings, Backups and Orphans handles carry the queries of
// each concept. It is the only package that runs SQL against the state
// database; River's job tables live in the same database and are migrated
// here too. No secret is ever written here in plain text: passwords live in
// Nomad Variables (DESIGN.md "Nomad jobs"), and SealedVariables keeps only
// their encrypted copies (package sealed).
package store

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
)

// Errors callers tell apart.
var (
	// ErrNotFound: no row with that id.
	ErrNotFound = errors.New("not found")
	// ErrInstanceExists: an instance (live or deprovisioned) already has that id.
	ErrInstanceExists = errors.New("instance already exists")
	// ErrOperationInFlight: the instance already has an operation in progress.
	ErrOperationInFlight = errors.New("another operation is in progress on this instance")
	// ErrRepairInFlight: the reconcile loop is repairing the instance (an
	// ErrOperationInFlight too); try again once it is back.
	ErrRepairInFlight = fmt.Errorf("the broker is repairing this instance: %w", ErrOperationInFlight)
	// ErrNoFreePort: every port of the configured gateway range is taken.
	ErrNoFreePort = errors.New("no free gateway port in the configured range")
	// ErrInvalidValue: PostgreSQL refused a value of the request (SQLSTATE
	// class 22, data exception): a NUL character or invalid UTF-8 in text, a
	// JSON escape or number jsonb cannot hold.
	ErrInvalidValue = errors.New("the state database cannot store a value of the request")
)

// Store is the state database: the one entry point, opened once. It hands
// out one handle per concept (Instances, Bindings, Backups, Orphans), all
// on the same connection pool, and keeps the database's own life: schema
// migrations, health, the status cache. Safe for concurrent use.
type Store struct {
	*db
	instances *Instances
	bindings  *Bindings
	backups   *Backups
	orphans   *Orphans
	sealed    *SealedVariables
}

// db is what every concept handle shares: the pool and the status cache.
type db struct {
	pool  *pgxpool.Pool
	cache *statusCache // nil until StartStatusCache
}

// Open connects to the state database at url (a libpq URL or DSN). The pool
// reconnects by itself after the database restarts.
func Open(ctx context.Context, url string) (*Store, error) {
	cfg, err := pgxpool.ParseConfig(url)
	if err != nil {
		return nil, fmt.Errorf("parse state database url: %w", err)
	}
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("open state database: %w", err)
	}
	d := &db{pool: pool}
	return &Store{db: d, instances: &Instances{d}, bindings: &Bindings{d}, backups: &Backups{d}, orphans: &Orphans{d}, sealed: &SealedVariables{d}}, nil
}

// Instances are the service instances and their operations.
func (s *Store) Instances() *Instances { return s.instances }

// Bindings are the service bindings.
func (s *Store) Bindings() *Bindings { return s.bindings }

// Backups are the dumps, the base backups behind PITR, and the backup slots.
func (s *Store) Backups() *Backups { return s.backups }

// Orphans are what the orphan reaper reads and records.
func (s *Store) Orphans() *Orphans { return s.orphans }

// SealedVariables are the encrypted copies of Nomad Variables.
func (s *Store) SealedVariables() *SealedVariables { return s.sealed }

// Close releases every connection.
func (s *Store) Close() { s.pool.Close() }

// Pool is the connection pool, for River's driver (riverpgxv5), which keeps
// its job tables in the same database so a job is enqueued in the same
// transaction as the row that asks for it.
func (s *Store) Pool() *pgxpool.Pool { return s.pool }

// Ping checks that the state database answers a query.
func (s *Store) Ping(ctx context.Context) error {
	var one int
	if err := s.pool.QueryRow(ctx, "SELECT 1").Scan(&one); err != nil {
		return fmt.Errorf("ping state database: %w", err)
	}
	return nil
}

// EnqueueFunc enqueues the durable job that carries out operation opID, inside
// the transaction tx that records it.
type EnqueueFunc func(ctx context.Context, tx pgx.Tx, opID string) error

func (d *db) inTx(ctx context.Context, fn func(pgx.Tx) error) error {
	return invalidValue(pgx.BeginFunc(ctx, d.pool, fn))
}

func isUniqueViolation(err error, constraint string) bool {
	var pgErr *pgconn.PgError
	return errors.As(err, &pgErr) && pgErr.Code == "23505" && (constraint == "" || pgErr.ConstraintName == constraint)
}

func notFound(err error) error {
	if errors.Is(err, pgx.ErrNoRows) {
		return ErrNotFound
	}
	return invalidValue(err)
}

// invalidValue maps PostgreSQL's data exceptions (SQLSTATE class 22) to
// ErrInvalidValue, keeping PostgreSQL's message; other errors pass unchanged.
func invalidValue(err error) error {
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) && strings.HasPrefix(pgErr.Code, "22") {
		return fmt.Errorf("%w: %s", ErrInvalidValue, pgErr.Message)
	}
	return err
}
