package dashboard

import (
	"bytes"
	"embed"
	"fmt"
	"html/template"
	"io/fs"
	"log/slog"
	"net/http"
	"strings"
	"time"
)

// StaticPath is where the dashboard's static files (its style sheet, the
// vendored charting library) are served.
const StaticPath = "/dashboard/static/"

//go:embed templates/*.html
var templateFiles embed.FS

//go:embed static
var staticFS embed.FS

// pages are the page templates, each with the layout.
var pages = func() map[string]*template.Template {
	out := map[string]*template.Template{}
	names, _ := fs.Glob(templateFiles, "templates/*.html")
	for _, n := range names {
		name := n[len("templates/") : len(n)-len(".html")]
		if name == "layout" {
			continue
		}
		out[name] = template.Must(template.New("layout.html").Funcs(funcs).ParseFS(templateFiles, "templates/layout.html", n))
	}
	return out
}()

var funcs = template.FuncMap{
	"bytes":    humanBytes,
	"seconds":  humanSeconds,
	"when":     when,
	"contains": func(list []any, s string) bool { return containsString(list, s) },
	"free":     free,
	"percent":  func(v any) string { f, _ := v.(float64); return fmt.Sprintf("%.1f %%", f) },
	"major":    func(v any) string { s, _ := v.(string); major, _, _ := strings.Cut(s, "."); return major },
}

// free writes limit - used (JSON numbers of bytes), or "no limit" for a
// limit of 0.
func free(limit, used any) string {
	l, _ := limit.(float64)
	u, _ := used.(float64)
	if l <= 0 {
		return "no limit"
	}
	return humanBytes(max(l-u, 0)) + " free of " + humanBytes(l)
}

// render writes page with v: status, the security headers, text/html.
func (d *Dashboard) render(w http.ResponseWriter, r *http.Request, status int, page string, v view) {
	var buf bytes.Buffer
	if err := pages[page].Execute(&buf, v); err != nil {
		d.Log.ErrorContext(r.Context(), "render dashboard page", slog.String("page", page), slog.String("error", err.Error()))
		secureHeaders(w)
		http.Error(w, "the page could not be rendered", http.StatusInternalServerError)
		return
	}
	secureHeaders(w)
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(status)
	if r.Method != http.MethodHead {
		_, _ = w.Write(buf.Bytes())
	}
}

// secureHeaders: scripts and styles from the broker only, no framing, no
// caching, and no Referer to other sites (the URL names the instance).
func secureHeaders(w http.ResponseWriter) {
	h := w.Header()
	h.Set("Content-Security-Policy", "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "+
		"connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("X-Frame-Options", "DENY")
	h.Set("Referrer-Policy", "same-origin") // "no-referrer" would make browsers send "Origin: null" on the forms
	h.Set("Cache-Control", "no-store")
}

// staticFiles serves the embedded static folder under StaticPath.
func staticFiles() http.Handler {
	sub, _ := fs.Sub(staticFS, "static")
	files := http.StripPrefix(StaticPath, http.FileServer(http.FS(sub)))
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-Content-Type-Options", "nosniff")
		w.Header().Set("Cache-Control", "public, max-age=3600")
		files.ServeHTTP(w, r)
	})
}

// humanBytes writes a JSON number of bytes as B, KiB, MiB or GiB.
func humanBytes(v any) string {
	n, ok := v.(float64)
	if !ok {
		return "–"
	}
	units := []string{"B", "KiB", "MiB", "GiB", "TiB"}
	i := 0
	for n >= 1024 && i < len(units)-1 {
		n /= 1024
		i++
	}
	if i == 0 {
		return fmt.Sprintf("%.0f %s", n, units[i])
	}
	return fmt.Sprintf("%.1f %s", n, units[i])
}

// humanSeconds writes a JSON number of seconds as a rounded duration.
func humanSeconds(v any) string {
	s, ok := v.(float64)
	if !ok {
		return "–"
	}
	return (time.Duration(s * float64(time.Second))).Round(time.Second).String()
}

// when writes a JSON RFC 3339 time as UTC to the second.
func when(v any) string {
	s, ok := v.(string)
	if !ok || s == "" {
		return "–"
	}
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return s
	}
	return t.UTC().Format("2006-01-02 15:04:05 UTC")
}

func containsString(list []any, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}
