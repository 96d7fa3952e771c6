package dashboard

import (
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/gorilla/mux"

	"github.com/pgbroker/pgbroker/webauth"
)

// action is one change a read-write user makes from a tab: a form POSTed
// to path (below Path). With a question, the first POST shows it on a
// confirmation page, and only the POST from that page (confirmed=yes)
// acts. do makes the management API call and says what happened.
type action struct {
	path     string
	tab      string
	question func(r *http.Request) string
	do       func(d *Dashboard, r *http.Request) (notice string, err error)
}

func (d *Dashboard) actions() []action {
	return []action{
		{"/queries/{pid}/cancel", "queries", ask("Cancel the running query of session %s? Its client gets an error; the session stays open.", "pid"),
			post("/queries/{pid}/cancel", "The query of session {pid} was cancelled.")},
		{"/queries/{pid}/terminate", "queries", ask("End session %s? Its running query stops, its open transaction is rolled back and its client is disconnected.", "pid"),
			post("/queries/{pid}/terminate", "Session {pid} was ended.")},
		{"/users", "users", nil, createUser},
		{"/users/{username}/password", "users", ask("Give %s a new generated password? Applications that use the old one can no longer log in.", "username"), resetPassword},
		{"/users/{username}/delete", "users", ask("Delete user %s? Its sessions end, and the tables and other objects it owns pass to the database owner.", "username"),
			call(http.MethodDelete, "/users/{username}", "User {username} was deleted.")},
		{"/extensions/{name}/enable", "extensions", nil, changeExtension(http.MethodPut, "enabled")},
		{"/extensions/{name}/disable", "extensions", ask("Disable extension %s? It is dropped from the database, which is refused while objects depend on it.", "name"),
			changeExtension(http.MethodDelete, "disabled")},
		{"/backups", "backups", nil, post("/backups", "A manual backup was asked for; it shows below and its status changes as it runs.")},
		{"/backups/{backup_id}/restore", "backups", ask("Restore the backup %s, taken %s? Every change made to the database after it was taken is lost, and the database is unavailable during the restore.", "backup_id", "taken"),
			post("/backups/{backup_id}/restore", "The restore started: the overview follows its operation.")},
		{"/backups/pitr-restore", "backups", ask("Restore the database as it was at %s (UTC)? Every change made after that moment is lost, and the database is unavailable during the restore.", "target_time"), pitrRestore},
		{"/settings/force-tls", "settings", forceTLSQuestion, setForceTLS},
		{"/settings/upgrade", "settings", upgradeQuestion, upgrade},
	}
}

// act serves a's POST: read-only users, a missing CSRF token and another
// origin get 403 and nothing is done.
func (d *Dashboard) act(a action) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ss, ok := d.session(w, r)
		if !ok {
			return
		}
		t := tabOf(a.tab)
		if err := webauth.CheckWrite(r, ss, r.PostFormValue(webauth.CSRFField), d.origin); err != nil {
			d.show(w, r, ss, t, http.StatusForbidden, "", err.Error())
			return
		}
		if a.question != nil && r.PostFormValue("confirmed") != "yes" {
			d.confirm(w, r, ss, t, a.question(r))
			return
		}
		notice, err := a.do(d, r)
		if err != nil {
			d.show(w, r, ss, t, statusOf(err), "", err.Error())
			return
		}
		d.show(w, r, ss, t, http.StatusOK, notice, "")
	})
}

// value is the path variable name of r, else its form field.
func value(r *http.Request, name string) string {
	if v, ok := mux.Vars(r)[name]; ok {
		return v
	}
	return r.PostFormValue(name)
}

// expand replaces each {name} of s with value(r, name).
func expand(r *http.Request, s string) string {
	for name := range mux.Vars(r) {
		s = strings.ReplaceAll(s, "{"+name+"}", value(r, name))
	}
	return s
}

// ask is a question with the values of names in its %s verbs.
func ask(format string, names ...string) func(r *http.Request) string {
	return func(r *http.Request) string {
		args := make([]any, len(names))
		for i, n := range names {
			args[i] = value(r, n)
		}
		return fmt.Sprintf(format, args...)
	}
}

// call is an action that sends method to path (its {vars} from r) without a body.
func call(method, path, notice string) func(d *Dashboard, r *http.Request) (string, error) {
	return func(d *Dashboard, r *http.Request) (string, error) {
		return expand(r, notice), d.call(r, method, expand(r, path), nil, nil)
	}
}

func post(path, notice string) func(d *Dashboard, r *http.Request) (string, error) {
	return call(http.MethodPost, path, notice)
}

func createUser(d *Dashboard, r *http.Request) (string, error) {
	body := map[string]any{"username": r.PostFormValue("username"), "password": r.PostFormValue("password"),
		"read_only": r.PostFormValue("read_only") == "on"}
	var out struct{ Username, Password string }
	if err := d.call(r, http.MethodPost, "/users", body, &out); err != nil {
		return "", err
	}
	return withPassword("User "+out.Username+" was created.", out.Password), nil
}

func resetPassword(d *Dashboard, r *http.Request) (string, error) {
	var out struct{ Username, Password string }
	if err := d.call(r, http.MethodPut, expand(r, "/users/{username}/password"), map[string]any{}, &out); err != nil {
		return "", err
	}
	return withPassword("The password of "+out.Username+" was changed.", out.Password), nil
}

// withPassword adds a generated password to notice: shown this once, kept nowhere.
func withPassword(notice, password string) string {
	if password == "" {
		return notice
	}
	return notice + " Its password, shown this once: " + password
}

func changeExtension(method, done string) func(d *Dashboard, r *http.Request) (string, error) {
	return func(d *Dashboard, r *http.Request) (string, error) {
		var out struct{ Operation, Description string }
		if err := d.call(r, method, expand(r, "/extensions/{name}"), nil, &out); err != nil {
			return "", err
		}
		if out.Operation != "" {
			return "Extension " + value(r, "name") + ": " + out.Description + ". The overview follows the operation.", nil
		}
		return "Extension " + value(r, "name") + " was " + done + ".", nil
	}
}

// pitrRestore reads target_time as UTC, "YYYY-MM-DDTHH:MM[:SS]" (a
// datetime-local field) or RFC 3339.
func pitrRestore(d *Dashboard, r *http.Request) (string, error) {
	raw := r.PostFormValue("target_time")
	target, err := time.Parse(time.RFC3339Nano, raw)
	for _, layout := range []string{"2006-01-02T15:04", "2006-01-02T15:04:05"} {
		if err != nil {
			target, err = time.ParseInLocation(layout, raw, time.UTC)
		}
	}
	if err != nil {
		return "", &apiError{Status: http.StatusBadRequest, Rule: "InvalidTargetTime",
			Description: fmt.Sprintf("target time %q must be a date and time such as 2026-12-07T14:30 (UTC)", raw)}
	}
	body := map[string]string{"target_time": target.UTC().Format(time.RFC3339Nano)}
	if err := d.call(r, http.MethodPost, "/backups/pitr-restore", body, nil); err != nil {
		return "", err
	}
	return "The point-in-time restore to " + body["target_time"] + " started: the overview follows its operation.", nil
}

func forceTLSQuestion(r *http.Request) string {
	if r.PostFormValue("force_tls") == "on" {
		return "Turn Force TLS on? Clients that connect without TLS are refused from then on."
	}
	return "Turn Force TLS off? Clients may then log in without TLS, and their passwords and data cross the network in clear."
}

func setForceTLS(d *Dashboard, r *http.Request) (string, error) {
	on := r.PostFormValue("force_tls") == "on"
	var out struct{ Operation string }
	if err := d.call(r, http.MethodPut, "/settings", map[string]bool{"force_tls": on}, &out); err != nil {
		return "", err
	}
	if out.Operation == "" {
		return "Force TLS was already so.", nil
	}
	return "Force TLS is being turned " + map[bool]string{true: "on", false: "off"}[on] + ": the overview follows the operation.", nil
}

func upgradeQuestion(r *http.Request) string {
	version := r.PostFormValue("postgresql_version")
	if r.PostFormValue("kind") == "major" {
		return "Upgrade the database to PostgreSQL " + version + "? It is a major upgrade: the database stops while pg_upgrade runs, and there is no way back to the version it runs now."
	}
	return "Upgrade the database to PostgreSQL " + version + "? A single node restarts; a Business cluster moves its nodes one at a time, with one switchover."
}

// upgrade asks for the one-click upgrade to the form's postgresql_version
// (one of the summary's upgrades; the management API checks it).
func upgrade(d *Dashboard, r *http.Request) (string, error) {
	version := r.PostFormValue("postgresql_version")
	var out struct{ Operation string }
	if err := d.call(r, http.MethodPost, "/upgrade", map[string]string{"postgresql_version": version}, &out); err != nil {
		return "", err
	}
	return "The upgrade to PostgreSQL " + version + " started: the overview follows its operation.", nil
}
