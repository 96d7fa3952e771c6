package mgmtapi

import (
	"errors"
	"log/slog"
	"net/http"
	"net/url"

	"github.com/gorilla/mux"

	"github.com/pgbroker/pgbroker/store"
	"github.com/pgbroker/pgbroker/users"
)

// userRoutes serve the database users of an instance (seed 003 "Managing
// Users").
type userRoutes struct{ *API }

func (a userRoutes) routes() []route {
	return []route{
		{http.MethodGet, "/users", a.listUsers},
		{http.MethodPost, "/users", a.createUser},
		{http.MethodPut, "/users/{username}/password", a.setPassword},
		{http.MethodDelete, "/users/{username}", a.deleteUser},
	}
}

// user is one user in JSON (seed 003 "Listing Users": username, read-only,
// protected, password encryption).
type user struct {
	Username           string `json:"username"`
	ReadOnly           bool   `json:"read_only"`
	Protected          bool   `json:"protected"`
	Binding            bool   `json:"binding"`
	CanLogin           bool   `json:"can_login"`
	PasswordEncryption string `json:"password_encryption"` // SCRAM-SHA-256, MD5, or none
	// Password is set only when the broker generated it: shown once, kept nowhere.
	Password string `json:"password,omitempty"`
}

func userJSON(u users.User) user {
	enc := u.PasswordEncryption
	if enc == "" {
		enc = "none"
	}
	return user{Username: u.Username, ReadOnly: u.ReadOnly, Protected: u.Protected, Binding: u.Binding,
		CanLogin: u.CanLogin, PasswordEncryption: enc}
}

// GET /api/instances/{instance_id}/users: 200 {"users": [...]}.
func (a userRoutes) listUsers(w http.ResponseWriter, r *http.Request) {
	inst, err := a.instance(r)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	all, err := a.Users.Users(r.Context(), inst)
	if err != nil {
		a.fail(w, r, dependency("list users on the instance", err))
		return
	}
	out := make([]user, len(all))
	for i, u := range all {
		out[i] = userJSON(u)
	}
	writeJSON(w, http.StatusOK, map[string]any{"users": out})
}

type createUserRequest struct {
	Username string `json:"username"`
	Password string `json:"password"`
	ReadOnly bool   `json:"read_only"`
}

// POST /api/instances/{instance_id}/users: 201 with the user (and the
// password when it was generated); 400 for a broken rule; 409 when the name
// is taken.
func (a userRoutes) createUser(w http.ResponseWriter, r *http.Request) {
	var req createUserRequest
	if err := readBody(r, &req); err != nil {
		a.fail(w, r, err)
		return
	}
	if err := users.CheckUsername(req.Username); err != nil {
		a.fail(w, r, ruleFailure(err))
		return
	}
	password, generated, err := choosePassword(req.Password)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	inst, err := a.instance(r)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	err = a.Users.CreateUser(r.Context(), inst, req.Username, password, req.ReadOnly)
	if errors.Is(err, users.ErrUserExists) {
		a.fail(w, r, failure(http.StatusConflict, "UserExists", "a user or role named %q already exists", req.Username))
		return
	}
	if err != nil {
		a.fail(w, r, dependency("create the user on the instance", err))
		return
	}
	a.log.InfoContext(r.Context(), "user created", slog.String("instance_id", inst.ID), slog.String("username", req.Username),
		slog.Bool("read_only", req.ReadOnly), slog.Bool("password_generated", generated))
	out := user{Username: req.Username, ReadOnly: req.ReadOnly, CanLogin: true, PasswordEncryption: "SCRAM-SHA-256"}
	if generated {
		out.Password = password
	}
	w.Header().Set("Location", r.URL.Path+"/"+url.PathEscape(req.Username))
	writeJSON(w, http.StatusCreated, out)
}

type setPasswordRequest struct {
	Password string `json:"password"`
}

// PUT /api/instances/{instance_id}/users/{username}/password: 200 (with the
// password when generated); 400 for a broken rule; 404 for an unknown user;
// 403 for a binding's user.
func (a userRoutes) setPassword(w http.ResponseWriter, r *http.Request) {
	var req setPasswordRequest
	if err := readBody(r, &req); err != nil {
		a.fail(w, r, err)
		return
	}
	password, generated, err := choosePassword(req.Password)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	inst, u, err := a.existingUser(r)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	if u.Binding {
		a.fail(w, r, failure(http.StatusForbidden, "BindingUser",
			"user %s belongs to a binding, whose credentials hold its password: unbind and bind again for a new one", u.Username))
		return
	}
	if err := a.Users.SetUserPassword(r.Context(), inst, u.Username, password); err != nil {
		a.fail(w, r, dependency("change the user's password on the instance", err))
		return
	}
	a.log.InfoContext(r.Context(), "user password changed", slog.String("instance_id", inst.ID), slog.String("username", u.Username),
		slog.Bool("password_generated", generated))
	u.CanLogin, u.PasswordEncryption = true, "SCRAM-SHA-256"
	out := userJSON(u)
	if generated {
		out.Password = password
	}
	writeJSON(w, http.StatusOK, out)
}

// DELETE /api/instances/{instance_id}/users/{username}: 204; 403 for the
// protected owner and for a binding's user; 404 for an unknown user.
func (a userRoutes) deleteUser(w http.ResponseWriter, r *http.Request) {
	inst, u, err := a.existingUser(r)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	switch {
	case u.Protected:
		a.fail(w, r, failure(http.StatusForbidden, "ProtectedUser",
			"user %s is protected: the owner made at provisioning cannot be deleted", u.Username))
		return
	case u.Binding:
		a.fail(w, r, failure(http.StatusForbidden, "BindingUser", "user %s belongs to a binding: unbind to delete it", u.Username))
		return
	}
	if err := a.Users.DeleteUser(r.Context(), inst, u.Username); err != nil {
		a.fail(w, r, dependency("delete the user on the instance", err))
		return
	}
	a.log.InfoContext(r.Context(), "user deleted", slog.String("instance_id", inst.ID), slog.String("username", u.Username))
	w.WriteHeader(http.StatusNoContent)
}

// existingUser returns the instance and the user of the path (404 when unknown).
func (a userRoutes) existingUser(r *http.Request) (inst store.Instance, u users.User, err error) {
	if inst, err = a.instance(r); err != nil {
		return inst, u, err
	}
	name := mux.Vars(r)["username"]
	u, err = a.Users.User(r.Context(), inst, name)
	if errors.Is(err, users.ErrUserNotFound) {
		return inst, u, failure(http.StatusNotFound, "UserNotFound", "instance %s has no user %q", inst.ID, name)
	}
	if err != nil {
		return inst, u, dependency("read the user on the instance", err)
	}
	return inst, u, nil
}

// choosePassword applies the password rules, or generates one for an empty
// password (seed 003: "let the platform generate a password").
func choosePassword(password string) (string, bool, error) {
	if password == "" {
		return users.GeneratePassword(), true, nil
	}
	if err := users.CheckPassword(password); err != nil {
		return "", false, ruleFailure(err)
	}
	return password, false, nil
}

// ruleFailure is a 400 naming the seed rule broken.
func ruleFailure(err error) error {
	var re *users.RuleError
	if errors.As(err, &re) {
		return failure(http.StatusBadRequest, re.Rule, "%s", re.Msg)
	}
	return err
}
