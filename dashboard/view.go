package dashboard

import (
	"net/http"
	"net/url"

	"github.com/gorilla/mux"

	"github.com/pgbroker/pgbroker/webauth"
)

// view is what a page template reads. The API's answers stay decoded JSON
// (objects as map[string]any): the templates show their fields as named in
// openapi.yaml.
type view struct {
	InstanceID string
	Username   string // the logged-in database user; "" on the login page
	ReadOnly   bool   // no action is offered
	CSRF       string // the session's token, in every form
	Prefix     string // path of the instance's dashboard: links are Prefix + "/users"…
	APIPrefix  string // path of the instance in the management API (downloads)
	Static     string // path of the static files
	Tabs       []tabLink
	Title      string
	Action     string // the login form's target
	Notice     string // what the last action did
	Problem    string // why it, or loading the page, failed

	Summary    map[string]any // GET /api/instances/{id}
	Stats      map[string]any // GET …/stats
	Metrics    map[string]any // GET …/metrics?range=Range
	Range      string         // 1h, 24h or 7d
	Ranges     []string
	Queries    map[string]any // GET …/queries
	ShowIdle   bool
	Users      map[string]any // GET …/users
	Extensions map[string]any // GET …/extensions
	Backups    map[string]any // GET …/backups
	Confirm    *confirmation
}

type tabLink struct {
	Title, Href string
	Current     bool
}

// confirmation is the page that asks before an action: the question and
// the form fields to send again with confirmed=yes.
type confirmation struct {
	Question string
	Action   string
	Fields   map[string]string
	Back     string
}

func (d *Dashboard) newView(r *http.Request, ss webauth.Session, current tab) view {
	id := mux.Vars(r)["instance_id"]
	v := view{InstanceID: id, Username: ss.Username, ReadOnly: ss.ReadOnly, CSRF: ss.CSRF, Prefix: d.link(id, ""),
		APIPrefix: d.basePath + "/api/instances/" + url.PathEscape(id), Static: d.basePath + StaticPath, Title: current.title}
	for _, t := range tabs {
		v.Tabs = append(v.Tabs, tabLink{Title: t.title, Href: v.Prefix + "/" + t.slug, Current: t.slug == current.slug})
	}
	return v
}

// confirm asks question before the action of r, on the page of tab t.
func (d *Dashboard) confirm(w http.ResponseWriter, r *http.Request, ss webauth.Session, t tab, question string) {
	v := d.newView(r, ss, t)
	c := &confirmation{Question: question, Action: r.URL.Path, Fields: map[string]string{}, Back: v.Prefix + "/" + t.slug}
	for k := range r.PostForm {
		if k != webauth.CSRFField && k != "confirmed" {
			c.Fields[k] = r.PostForm.Get(k)
		}
	}
	v.Confirm = c
	d.render(w, r, http.StatusOK, "confirm", v)
}

// loadOverview reads the summary, then the current figures: an instance
// restarting has a summary and no figures, which the page says.
func loadOverview(d *Dashboard, r *http.Request, v *view) error {
	if err := d.call(r, http.MethodGet, "", nil, &v.Summary); err != nil {
		return err
	}
	if err := d.call(r, http.MethodGet, "/stats", nil, &v.Stats); err != nil {
		v.Problem = joinProblems(v.Problem, "The current figures are not available: "+err.Error())
	}
	return nil
}

// metricRanges are the plots' ranges (GET …/metrics?range=).
var metricRanges = []string{"1h", "24h", "7d"}

func loadMetrics(d *Dashboard, r *http.Request, v *view) error {
	v.Range, v.Ranges = "1h", metricRanges
	for _, rg := range metricRanges {
		if r.URL.Query().Get("range") == rg {
			v.Range = rg
		}
	}
	return d.call(r, http.MethodGet, "/metrics?range="+v.Range, nil, &v.Metrics)
}

func loadQueries(d *Dashboard, r *http.Request, v *view) error {
	v.ShowIdle = r.URL.Query().Get("idle") == "true" || r.PostFormValue("idle") == "true"
	path := "/queries"
	if v.ShowIdle {
		path += "?idle=true"
	}
	return d.call(r, http.MethodGet, path, nil, &v.Queries)
}

func loadUsers(d *Dashboard, r *http.Request, v *view) error {
	return d.call(r, http.MethodGet, "/users", nil, &v.Users)
}

func loadExtensions(d *Dashboard, r *http.Request, v *view) error {
	return d.call(r, http.MethodGet, "/extensions", nil, &v.Extensions)
}

func loadBackups(d *Dashboard, r *http.Request, v *view) error {
	return d.call(r, http.MethodGet, "/backups", nil, &v.Backups)
}

func loadSettings(d *Dashboard, r *http.Request, v *view) error {
	return d.call(r, http.MethodGet, "", nil, &v.Summary)
}
