package dashboard

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"time"

	"github.com/gorilla/mux"

	"github.com/pgbroker/pgbroker/store"
	"github.com/pgbroker/pgbroker/users"
	"github.com/pgbroker/pgbroker/webauth"
)

// Longest username and password a login form may carry (PostgreSQL names
// are at most 63 bytes; the users API's passwords at most 64 characters).
const (
	maxUsername = 63
	maxPassword = 1024
)

// home sends a logged-in user to the overview, anyone else to the login.
func (d *Dashboard) home(w http.ResponseWriter, r *http.Request) {
	id := mux.Vars(r)["instance_id"]
	if _, err := d.Sessions.Verify(r.Context(), r, id); err == nil {
		http.Redirect(w, r, d.link(id, "/overview"), http.StatusSeeOther)
		return
	}
	http.Redirect(w, r, d.link(id, "/login"), http.StatusSeeOther)
}

// loginPage is the same page for every instance id, known or not: it
// reveals nothing, not even whether the instance exists.
func (d *Dashboard) loginPage(w http.ResponseWriter, r *http.Request) {
	d.renderLogin(w, r, http.StatusOK, "")
}

func (d *Dashboard) renderLogin(w http.ResponseWriter, r *http.Request, status int, problem string) {
	id := mux.Vars(r)["instance_id"]
	d.render(w, r, status, "login", view{InstanceID: id, Problem: problem, Action: d.link(id, "/login")})
}

// login checks the form's username and password against the instance and
// starts a session: 303 to the overview; 401 for a wrong login, an unknown
// or deprovisioned instance alike; 403 from another origin; 429 past the
// login limits; 503 when the instance does not answer.
func (d *Dashboard) login(w http.ResponseWriter, r *http.Request) {
	id := mux.Vars(r)["instance_id"]
	if webauth.RequestOrigin(r) != d.origin {
		d.renderLogin(w, r, http.StatusForbidden, "This login form was sent from another site.")
		return
	}
	if ok, wait := d.Limiter.Allow(clientAddress(r), id, time.Now()); !ok {
		w.Header().Set("Retry-After", strconv.Itoa(int(wait.Seconds())+1))
		d.renderLogin(w, r, http.StatusTooManyRequests, "Too many login attempts: try again in "+wait.Round(time.Second).String()+".")
		return
	}
	username, password := r.PostFormValue("username"), r.PostFormValue("password")
	if username == "" || len(username) > maxUsername || len(password) > maxPassword {
		d.renderLogin(w, r, http.StatusBadRequest, "Give a username of at most 63 characters and its password.")
		return
	}
	inst, err := d.Store.Instances().GetInstance(r.Context(), id)
	if (err == nil && inst.Gone()) || errors.Is(err, store.ErrInvalidValue) {
		err = store.ErrNotFound // an id that cannot be an instance's is answered as a wrong login
	}
	var user users.User
	if err == nil {
		user, err = d.Logins.LogIn(r.Context(), inst, username, password)
	}
	if err == nil {
		ss := d.Sessions.New(id, user.Username, user.ReadOnly, time.Now())
		ss.Stamp = user.PasswordStamp
		http.SetCookie(w, d.Sessions.Cookie(ss))
		d.Log.InfoContext(r.Context(), "dashboard login", slog.String("instance_id", id), slog.String("username", user.Username),
			slog.Bool("read_only", user.ReadOnly))
		http.Redirect(w, r, d.link(id, "/overview"), http.StatusSeeOther)
		return
	}
	if errors.Is(err, store.ErrNotFound) || errors.Is(err, webauth.ErrLoginRefused) {
		d.Log.InfoContext(r.Context(), "dashboard login refused", slog.String("instance_id", id), slog.String("client", clientAddress(r)))
		d.renderLogin(w, r, http.StatusUnauthorized, "Wrong username or password.")
		return
	}
	d.Log.WarnContext(r.Context(), "dashboard login failed", slog.String("instance_id", id), slog.String("error", err.Error()))
	d.renderLogin(w, r, http.StatusServiceUnavailable, "The database did not answer the login; try again in a moment.")
}

// logout ends the session (a form with the CSRF token): 303 to the login.
func (d *Dashboard) logout(w http.ResponseWriter, r *http.Request) {
	id := mux.Vars(r)["instance_id"]
	ss, err := d.Sessions.FromRequest(r, id, time.Now())
	if err == nil {
		err = webauth.CheckOrigin(r, ss, r.PostFormValue(webauth.CSRFField), d.origin)
	}
	if err != nil {
		d.renderLogin(w, r, http.StatusForbidden, err.Error())
		return
	}
	http.SetCookie(w, d.Sessions.Clear(id))
	http.Redirect(w, r, d.link(id, "/login"), http.StatusSeeOther)
}

// clientAddress is the host of the TCP peer (a proxy's, behind one: the
// limits then count that proxy's clients together).
func clientAddress(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}

// UserLookup finds a user of an instance (instances.Service). Errors:
// users.ErrUserNotFound.
type UserLookup interface {
	User(ctx context.Context, inst store.Instance, username string) (users.User, error)
}

// Check is the webauth.Check of dashboard sessions: the session's instance
// is still provisioned, and its user still exists, may log in, is still
// read-only or read-write and has the same password as at login; otherwise
// webauth.ErrLoginRefused.
func Check(st *store.Store, u UserLookup) webauth.Check {
	return func(ctx context.Context, ss webauth.Session) error {
		inst, err := st.Instances().GetInstance(ctx, ss.InstanceID)
		if errors.Is(err, store.ErrNotFound) || (err == nil && inst.Gone()) {
			return webauth.ErrLoginRefused
		}
		if err != nil {
			return err
		}
		user, err := u.User(ctx, inst, ss.Username)
		if errors.Is(err, users.ErrUserNotFound) || (err == nil && (!user.CanLogin || user.ReadOnly != ss.ReadOnly || user.PasswordStamp != ss.Stamp)) {
			return webauth.ErrLoginRefused
		}
		return err
	}
}
