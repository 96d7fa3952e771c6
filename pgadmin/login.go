package pgadmin

import (
	"context"
	"errors"

	"github.com/jackc/pgx/v5/pgconn"
)

// ErrLoginRefused means PostgreSQL refused the login: a wrong password, an
// unknown role, or a role without LOGIN (SQLSTATE 28P01 or 28000).
var ErrLoginRefused = errors.New("PostgreSQL refused the username or password")

// LogIn checks that a's user logs in to database with its password: a SCRAM
// login over the TLS a was made with (channel binding included), then
// SELECT 1. Errors: ErrLoginRefused, or the connection's.
func (a Admin) LogIn(ctx context.Context, database string) error {
	conn, err := a.connect(ctx, database)
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) && (pgErr.Code == "28P01" || pgErr.Code == "28000") {
		return ErrLoginRefused
	}
	if err != nil {
		return err
	}
	defer conn.Close(ctx)
	_, err = conn.Exec(ctx, "SELECT 1")
	return err
}
