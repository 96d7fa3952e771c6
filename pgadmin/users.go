package pgadmin

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/pgbroker/pgbroker/users"
)

// The SQL side of an instance's database users: their rules and shapes are
// package users'.

// Users lists the instance's users: the owner role and every role that is a
// member of the owner role or of the reader group, by name.
func (a Admin) Users(ctx context.Context, n Names) ([]users.User, error) {
	conn, err := a.connect(ctx, "postgres")
	if err != nil {
		return nil, err
	}
	defer conn.Close(ctx)
	rows, err := conn.Query(ctx, `
		SELECT r.rolname, r.rolcanlogin,
			CASE WHEN r.rolpassword LIKE 'SCRAM-SHA-256$%' THEN 'SCRAM-SHA-256'
			     WHEN r.rolpassword LIKE 'md5%' THEN 'MD5' ELSE '' END,
			coalesce(left(encode(sha256(convert_to(r.rolpassword, 'UTF8')), 'hex'), 16), ''),
			EXISTS (SELECT 1 FROM pg_auth_members m JOIN pg_authid g ON g.oid = m.roleid
				WHERE m.member = r.oid AND g.rolname = $2)
		FROM pg_authid r
		WHERE r.rolname = $1
		   OR EXISTS (SELECT 1 FROM pg_auth_members m JOIN pg_authid g ON g.oid = m.roleid
				WHERE m.member = r.oid AND g.rolname IN ($1, $2))
		ORDER BY r.rolname`, n.Owner, n.Reader)
	if err != nil {
		return nil, fmt.Errorf("list users: %w", err)
	}
	all, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (users.User, error) {
		var u users.User
		err := row.Scan(&u.Username, &u.CanLogin, &u.PasswordEncryption, &u.PasswordStamp, &u.ReadOnly)
		u.Protected = u.Username == n.Owner
		u.Binding = users.IsBindingRole(u.Username)
		return u, err
	})
	if err != nil {
		return nil, fmt.Errorf("list users: %w", err)
	}
	return all, nil
}

// User returns one user of Users. Errors: users.ErrUserNotFound.
func (a Admin) User(ctx context.Context, n Names, username string) (users.User, error) {
	all, err := a.Users(ctx, n)
	if err != nil {
		return users.User{}, err
	}
	for _, u := range all {
		if u.Username == username {
			return u, nil
		}
	}
	return users.User{}, users.ErrUserNotFound
}

// CreateUser creates a login role with a SCRAM-SHA-256 verifier of password
// and the seed's read-write or read-only grants (see EnsureLoginRole). The
// caller has checked username and password (users.CheckUsername, users.CheckPassword).
// Errors: ErrUserExists.
func (a Admin) CreateUser(ctx context.Context, n Names, username, password string, readOnly bool) error {
	verifier, err := ScramVerifier(password)
	if err != nil {
		return err
	}
	conn, err := a.connect(ctx, "postgres")
	if err != nil {
		return err
	}
	defer conn.Close(ctx)
	return pgx.BeginFunc(ctx, conn, func(tx pgx.Tx) error {
		_, err := tx.Exec(ctx, "CREATE ROLE "+ident(username)+" LOGIN PASSWORD "+literal(verifier))
		var pgErr *pgconn.PgError
		if errors.As(err, &pgErr) && pgErr.Code == "42710" {
			return users.ErrUserExists
		}
		if err != nil {
			return fmt.Errorf("create role: %w", err)
		}
		for _, s := range grants(n, username, readOnly) {
			if _, err := tx.Exec(ctx, s); err != nil {
				return fmt.Errorf("%s: %w", firstWords(s, 3), err)
			}
		}
		return nil
	})
}

// SetPassword gives the user a new password (SCRAM-SHA-256 verifier) and
// lets it log in: the owner role, made without one, can then log in too.
func (a Admin) SetPassword(ctx context.Context, n Names, username, password string) error {
	verifier, err := ScramVerifier(password)
	if err != nil {
		return err
	}
	conn, err := a.connect(ctx, "postgres")
	if err != nil {
		return err
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, "ALTER ROLE "+ident(username)+" LOGIN PASSWORD "+literal(verifier)); err != nil {
		return fmt.Errorf("alter role password: %w", err)
	}
	return nil
}
