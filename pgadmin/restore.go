package pgadmin

import "context"

// RestoreRole is the login role pg_restore connects as (nomad-jobs/backup.nomad.hcl, mode restore).
// A dump holds tenant code (CHECK constraints, index expressions, defaults,
// triggers) that runs while it is restored, and SET ROLE is no boundary: the
// code may RESET ROLE back to the session user. So the session user of a
// restore is this role, never a superuser.
const RestoreRole = "pgbroker_restore"

// EnsureRestoreRole makes RestoreRole, creating it when missing, a LOGIN
// role with no attribute beyond a superuser-free login (NOSUPERUSER
// NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS), a SCRAM-SHA-256
// verifier of password, no per-role settings, and membership in the owner
// role n.Owner (the owner of the database and of schema public), so
// pg_restore --role=<owner> restores as the owner. Idempotent: run again it
// resets the password and attributes. Errors name the statement by its
// first words, never the password.
func (a Admin) EnsureRestoreRole(ctx context.Context, n Names, password string) error {
	verifier, err := ScramVerifier(password)
	if err != nil {
		return err
	}
	conn, err := a.connect(ctx, "postgres")
	if err != nil {
		return err
	}
	defer conn.Close(ctx)
	if err := ensureRole(ctx, conn, RestoreRole, "NOLOGIN"); err != nil {
		return err
	}
	r := ident(RestoreRole)
	return execAll(ctx, conn, []string{
		// Anything the last restore's tenant code set on the role goes.
		"ALTER ROLE " + r + " RESET ALL",
		"ALTER ROLE " + r + " IN DATABASE " + ident(n.Database) + " RESET ALL",
		"ALTER ROLE " + r + " NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS INHERIT CONNECTION LIMIT -1 VALID UNTIL 'infinity'",
		"GRANT " + ident(n.Owner) + " TO " + r,
		"ALTER ROLE " + r + " LOGIN PASSWORD " + literal(verifier),
	})
}

// DisableRestoreRole ends what EnsureRestoreRole opened once a restore is
// over, whatever its outcome: RestoreRole may no longer log in, has no
// password, is no member of n.Owner (so it is not listed among the
// instance's users), and its sessions are ended: call it once pg_restore
// has exited. A missing role is not an error. Idempotent.
func (a Admin) DisableRestoreRole(ctx context.Context, n Names) error {
	conn, err := a.connect(ctx, "postgres")
	if err != nil {
		return err
	}
	defer conn.Close(ctx)
	if exists, err := roleExists(ctx, conn, RestoreRole); err != nil || !exists {
		return err
	}
	r := ident(RestoreRole)
	if err := execAll(ctx, conn, []string{
		"ALTER ROLE " + r + " NOLOGIN PASSWORD NULL",
		"REVOKE " + ident(n.Owner) + " FROM " + r,
	}); err != nil {
		return err
	}
	return endSessions(ctx, conn, RestoreRole)
}
