package dashboard

import (
	"errors"
	"net/http"

	"github.com/gorilla/mux"

	"github.com/pgbroker/pgbroker/webauth"
)

// tab is one page of the dashboard: its path below Path, its title and
// what it loads from the management API into the view.
type tab struct {
	slug, title string
	load        func(d *Dashboard, r *http.Request, v *view) error
}

// tabs are the seeds' dashboard tabs (000 "Database Dashboard"), in order.
var tabs = []tab{
	{"overview", "Overview", loadOverview},
	{"metrics", "Metrics", loadMetrics},
	{"queries", "Running queries", loadQueries},
	{"users", "Users", loadUsers},
	{"extensions", "Extensions", loadExtensions},
	{"backups", "Backups", loadBackups},
	{"settings", "Settings", loadSettings},
}

func tabOf(slug string) tab {
	for _, t := range tabs {
		if t.slug == slug {
			return t
		}
	}
	return tabs[0]
}

// page serves tab t to a logged-in user; anyone else goes to the login.
func (d *Dashboard) page(t tab) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ss, ok := d.session(w, r)
		if !ok {
			return
		}
		d.show(w, r, ss, t, http.StatusOK, "", "")
	})
}

// show renders tab t with a notice or a problem; a load that fails shows
// its reason with the API's status.
func (d *Dashboard) show(w http.ResponseWriter, r *http.Request, ss webauth.Session, t tab, status int, notice, problem string) {
	v := d.newView(r, ss, t)
	v.Notice, v.Problem = notice, problem
	if err := t.load(d, r, &v); err != nil {
		v.Problem = joinProblems(v.Problem, err.Error())
		if status < 300 {
			status = statusOf(err)
		}
	}
	d.render(w, r, status, t.slug, v)
}

// session is r's session of the path's instance; without one (or once its
// user is gone) the browser goes to the login (303) and ok is false.
func (d *Dashboard) session(w http.ResponseWriter, r *http.Request) (webauth.Session, bool) {
	id := mux.Vars(r)["instance_id"]
	ss, err := d.Sessions.Verify(r.Context(), r, id)
	if err != nil {
		if errors.Is(err, webauth.ErrLoginRefused) {
			http.SetCookie(w, d.Sessions.Clear(id))
		}
		http.Redirect(w, r, d.link(id, "/login"), http.StatusSeeOther)
		return ss, false
	}
	return ss, true
}

func statusOf(err error) int {
	var ae *apiError
	if errors.As(err, &ae) {
		return ae.Status
	}
	return http.StatusInternalServerError
}

func joinProblems(a, b string) string {
	if a == "" {
		return b
	}
	return a + " " + b
}
