package dashboard

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"

	"github.com/gorilla/mux"

	"github.com/pgbroker/pgbroker/webauth"
)

// apiError is a refusal or failure of the management API: its status and
// its {"error", "description"}.
type apiError struct {
	Status      int
	Rule        string
	Description string
}

func (e *apiError) Error() string { return e.Description }

// call makes one management API request for the user of r, in process:
// method on /api/instances/{instance_id}+path with body as JSON (nil: none),
// carrying r's cookies (the session), its Origin and the CSRF token of its
// form, so the API's Guard checks the user exactly as for a script. A 2xx
// decodes into out (nil: ignored); anything else is an *apiError.
func (d *Dashboard) call(r *http.Request, method, path string, body, out any) error {
	var payload bytes.Buffer
	if body != nil {
		if err := json.NewEncoder(&payload).Encode(body); err != nil {
			return err
		}
	}
	target := "/api/instances/" + url.PathEscape(mux.Vars(r)["instance_id"]) + path
	req, err := http.NewRequestWithContext(r.Context(), method, target, &payload)
	if err != nil {
		return err
	}
	req.RemoteAddr = r.RemoteAddr
	req.Header.Set("Content-Type", "application/json")
	req.Header["Cookie"] = r.Header["Cookie"]
	if o := webauth.RequestOrigin(r); o != "" {
		req.Header.Set("Origin", o)
	}
	if r.Method == http.MethodPost {
		req.Header.Set(webauth.CSRFHeader, r.PostFormValue(webauth.CSRFField))
	}
	rec := &recorder{header: http.Header{}, status: http.StatusOK}
	d.API.ServeHTTP(rec, req)
	if rec.status >= 300 {
		e := &apiError{Status: rec.status}
		if json.Unmarshal(rec.body.Bytes(), e) != nil || e.Description == "" {
			e.Description = fmt.Sprintf("the management API answered %d", rec.status)
		}
		return e
	}
	if out == nil {
		return nil
	}
	return json.Unmarshal(rec.body.Bytes(), out)
}

// recorder is the http.ResponseWriter of an in-process API call.
type recorder struct {
	header http.Header
	status int
	body   bytes.Buffer
	wrote  bool
}

func (w *recorder) Header() http.Header { return w.header }
func (w *recorder) Write(b []byte) (int, error) {
	w.wrote = true
	return w.body.Write(b)
}
func (w *recorder) WriteHeader(status int) {
	if !w.wrote {
		w.status, w.wrote = status, true
	}
}
