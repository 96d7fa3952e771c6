package pgadmin

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// Errors of user management callers tell apart.
var (
	// ErrUserExists: a role of that name exists (SQLSTATE 42710).
	ErrUserExists = errors.New("a user of that name already exists")
	// ErrUserNotFound: no user of that name in the instance's database.
	ErrUserNotFound = errors.New("no such user")
)

// User is one database user as seed 003 "Listing Users" shows them.
type User struct {
	Username  string // pg_authid.rolname
	ReadOnly  bool   // member of the reader group (Names.Reader)
	Protected bool   // the owner role made at provisioning: cannot be deleted
	Binding   bool   // the login role of an OSB binding (IsBindingRole): bind and unbind manage it
	CanLogin  bool   // pg_authid.rolcanlogin
	// PasswordEncryption is "SCRAM-SHA-256" or "MD5" after the prefix of
	// pg_authid.rolpassword, "" without a password.
	PasswordEncryption string
}

// Users lists the instance's users: the owner role and every role that is a
// member of the owner role or of the reader group, by name.
func (a Admin) Users(ctx context.Context, n Names) ([]User, error) {
	conn, err := a.connect(ctx, "postgres")
	if err != nil {
		return nil, err
	}
	defer conn.Close(ctx)
	rows, err := conn.Query(ctx, `
		SELECT r.rolname, r.rolcanlogin,
			CASE WHEN r.rolpassword LIKE 'SCRAM-SHA-256$%' THEN 'SCRAM-SHA-256'
			     WHEN r.rolpassword LIKE 'md5%' THEN 'MD5' ELSE '' END,
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
	users, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (User, error) {
		var u User
		err := row.Scan(&u.Username, &u.CanLogin, &u.PasswordEncryption, &u.ReadOnly)
		u.Protected = u.Username == n.Owner
		u.Binding = IsBindingRole(u.Username)
		return u, err
	})
	if err != nil {
		return nil, fmt.Errorf("list users: %w", err)
	}
	return users, nil
}

// User returns one user of Users. Errors: ErrUserNotFound.
func (a Admin) User(ctx context.Context, n Names, username string) (User, error) {
	users, err := a.Users(ctx, n)
	if err != nil {
		return User{}, err
	}
	for _, u := range users {
		if u.Username == username {
			return u, nil
		}
	}
	return User{}, ErrUserNotFound
}

// CreateUser creates a login role with a SCRAM-SHA-256 verifier of password
// and the seed's read-write or read-only grants (see EnsureLoginRole). The
// caller has checked username and password (CheckUsername, CheckPassword).
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
			return ErrUserExists
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
