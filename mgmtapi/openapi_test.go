package mgmtapi_test

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/gorilla/mux"

	"github.com/pgbroker/pgbroker/httpapi"
	"github.com/pgbroker/pgbroker/mgmtapi"
)

// The management API is every route under /api of the broker's root router:
// the ones mgmtapi serves and any route httpapi adds there itself. The tests below hold openapi.yaml to exactly that set.
// Routes outside /api are out of scope on purpose: /v2/ is the OSB API, whose
// contract is the OSB specification (brokerapi serves it); /healthz, /readyz
// and /metrics are operational endpoints for the platform and Prometheus; the
// dashboard's HTML pages are for browsers, not API clients.

const user, password = "broker", "secret-value"

// loadDocument parses and validates openapi.yaml with kin-openapi, as an
// OpenAPI 3 client generator or gateway would.
func loadDocument(t *testing.T) *openapi3.T {
	t.Helper()
	doc, err := openapi3.NewLoader().LoadFromData(mgmtapi.OpenAPI)
	if err != nil {
		t.Fatalf("load openapi.yaml: %v", err)
	}
	if err := doc.Validate(context.Background()); err != nil {
		t.Fatalf("openapi.yaml is not a valid OpenAPI 3 document: %v", err)
	}
	return doc
}

// TestOpenAPIDocumentIsValid: openapi.yaml is valid OpenAPI 3 (kin-openapi's
// validation: structure, references, schemas, no stray keys such as the ones
// an unquoted comma makes in a YAML flow map) and documents /api only.
func TestOpenAPIDocumentIsValid(t *testing.T) {
	doc := loadDocument(t)
	if !strings.HasPrefix(doc.OpenAPI, "3.") {
		t.Errorf("openapi: %q, want 3.x", doc.OpenAPI)
	}
	for path := range doc.Paths.Map() {
		if !strings.HasPrefix(path, "/api/") {
			t.Errorf("path %s is outside the management API (/api/)", path)
		}
	}
}

// mounted returns the root router exactly as the broker builds it
// (httpapi.NewRouter with the management handler cmd/pgbroker passes) and
// the routers behind its /api mounts, by mount path template.
func mounted(t *testing.T) (*mux.Router, map[string]*mux.Router) {
	t.Helper()
	management := mgmtapi.New(mgmtapi.Options{}).Handler()
	root := httpapi.NewRouter(nil, httpapi.Options{
		Username: user, Password: password, MaxBodyBytes: 1 << 20,
		Management: management, Metrics: http.NotFoundHandler(),
	})
	return root.(*mux.Router), map[string]*mux.Router{"/api/": management.(*mux.Router)}
}

// served lists "METHOD path-template" for every route the root router
// reaches under /api, walking into the routers it mounts there.
func served(t *testing.T, root *mux.Router, mounts map[string]*mux.Router) []string {
	t.Helper()
	var out []string
	err := root.Walk(func(route *mux.Route, _ *mux.Router, _ []*mux.Route) error {
		path, err := route.GetPathTemplate()
		if err != nil || !strings.HasPrefix(path, "/api") {
			return nil // outside the management API: see the comment at the top
		}
		if methods, err := route.GetMethods(); err == nil {
			for _, m := range methods {
				out = append(out, m+" "+path)
			}
			return nil
		}
		sub, ok := mounts[path]
		if !ok {
			t.Errorf("the root router mounts %s under /api with no method: add its router to mounted() so its routes are checked", path)
			return nil
		}
		return sub.Walk(func(route *mux.Route, _ *mux.Router, _ []*mux.Route) error {
			path, err := route.GetPathTemplate()
			if err != nil {
				return err
			}
			methods, err := route.GetMethods()
			if err != nil {
				t.Errorf("route %s of the %s mount serves every method; give it its methods", path, path)
				return nil
			}
			for _, m := range methods {
				out = append(out, m+" "+path)
			}
			return nil
		})
	})
	if err != nil {
		t.Fatalf("walk the router: %v", err)
	}
	slices.Sort(out)
	return out
}

// documented lists "METHOD path" for every operation of the document.
func documented(doc *openapi3.T) []string {
	var out []string
	for path, item := range doc.Paths.Map() {
		for method := range item.Operations() {
			out = append(out, strings.ToUpper(method)+" "+path)
		}
	}
	slices.Sort(out)
	return out
}

var pathParameter = regexp.MustCompile(`\{([^}]+)\}`)

// routedTo sends method and path (its parameters filled in) through the root
// router and the router it mounts there, and returns the path template of the
// route that answers; "" when none does (404, 405).
func routedTo(root *mux.Router, mounts map[string]*mux.Router, method, path string) string {
	req := httptest.NewRequest(method, pathParameter.ReplaceAllString(path, "sample-$1"), nil)
	var m mux.RouteMatch
	if !root.Match(req, &m) || m.MatchErr != nil || m.Route == nil {
		return ""
	}
	template, _ := m.Route.GetPathTemplate()
	if sub, ok := mounts[template]; ok {
		var sm mux.RouteMatch
		if !sub.Match(req, &sm) || sm.MatchErr != nil || sm.Route == nil {
			return ""
		}
		template, _ = sm.Route.GetPathTemplate()
	}
	return template
}

// TestOpenAPIDocumentsEveryManagementRouteAndNoOther: every method and path
// the broker routes under /api is in openapi.yaml, and every operation
// openapi.yaml documents reaches the route of its path (not a 404, a 405, or
// another route that shadows it).
func TestOpenAPIDocumentsEveryManagementRouteAndNoOther(t *testing.T) {
	doc := loadDocument(t)
	root, mounts := mounted(t)
	routes, operations := served(t, root, mounts), documented(doc)
	if len(routes) < 14 {
		t.Fatalf("walked %d routes under /api: the walk misses the mounted routers (%v)", len(routes), routes)
	}
	for _, r := range routes {
		if !slices.Contains(operations, r) {
			t.Errorf("%s is routed but not in openapi.yaml", r)
		}
		method, path, _ := strings.Cut(r, " ")
		if got := routedTo(root, mounts, method, path); got != path {
			t.Errorf("%s is shadowed: a request reaches %q", r, got)
		}
	}
	for _, o := range operations {
		if !slices.Contains(routes, o) {
			t.Errorf("%s is in openapi.yaml but not routed", o)
		}
	}
}

// TestOpenAPIDocumentIsServedBehindTheBrokerCredentials: GET
// /api/openapi.yaml answers the embedded document with the broker's
// credentials, 401 without.
func TestOpenAPIDocumentIsServedBehindTheBrokerCredentials(t *testing.T) {
	root, _ := mounted(t)
	srv := httptest.NewServer(root)
	defer srv.Close()
	for _, auth := range []bool{true, false} {
		req, _ := http.NewRequest(http.MethodGet, srv.URL+mgmtapi.DocumentPath, nil)
		if auth {
			req.SetBasicAuth(user, password)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		switch {
		case !auth && resp.StatusCode != http.StatusUnauthorized:
			t.Errorf("without credentials: %d, want 401", resp.StatusCode)
		case auth && (resp.StatusCode != http.StatusOK || string(body) != string(mgmtapi.OpenAPI)):
			t.Errorf("with credentials: %d, %d bytes; want 200 and the %d bytes of openapi.yaml", resp.StatusCode, len(body), len(mgmtapi.OpenAPI))
		case auth && resp.Header.Get("Content-Type") != "application/yaml":
			t.Errorf("Content-Type %q, want application/yaml", resp.Header.Get("Content-Type"))
		}
	}
}
