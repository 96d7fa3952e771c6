package users

import "errors"

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
	ReadOnly  bool   // member of the instance's reader group (db_<short id>_ro)
	Protected bool   // the owner role made at provisioning: cannot be deleted
	Binding   bool   // the login role of an OSB binding (IsBindingRole): bind and unbind manage it
	CanLogin  bool   // pg_authid.rolcanlogin
	// PasswordEncryption is "SCRAM-SHA-256" or "MD5" after the prefix of
	// pg_authid.rolpassword, "" without a password.
	PasswordEncryption string
	// PasswordStamp is the first 16 hex digits of the SHA-256 of
	// pg_authid.rolpassword: it changes with every password change and
	// reveals nothing of the verifier; "" without a password. Dashboard
	// sessions end when it changes.
	PasswordStamp string
}
