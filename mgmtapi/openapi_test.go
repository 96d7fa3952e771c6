package mgmtapi

import (
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/gorilla/mux"
	"sigs.k8s.io/yaml"
)

// TestRoutesMatchOpenAPI: the router serves exactly the paths and methods
// openapi.yaml describes.
func TestRoutesMatchOpenAPI(t *testing.T) {
	var doc struct {
		OpenAPI string                    `json:"openapi"`
		Paths   map[string]map[string]any `json:"paths"`
	}
	if err := yaml.Unmarshal(OpenAPI, &doc); err != nil {
		t.Fatalf("openapi.yaml: %v", err)
	}
	if !strings.HasPrefix(doc.OpenAPI, "3.") {
		t.Fatalf("openapi.yaml is OpenAPI %q, want 3.x", doc.OpenAPI)
	}
	var documented []string
	for path, item := range doc.Paths {
		for method := range item {
			if method != "parameters" {
				documented = append(documented, strings.ToUpper(method)+" "+path)
			}
		}
	}
	var served []string
	router := New(nil, nil, nil, nil).Handler().(*mux.Router)
	err := router.Walk(func(route *mux.Route, _ *mux.Router, _ []*mux.Route) error {
		path, err := route.GetPathTemplate()
		if err != nil {
			return err
		}
		methods, err := route.GetMethods()
		if err != nil {
			return err
		}
		for _, m := range methods {
			served = append(served, m+" "+path)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(documented)
	slices.Sort(served)
	if !slices.Equal(documented, served) {
		t.Fatalf("routes differ from openapi.yaml:\nserved     %v\ndocumented %v", served, documented)
	}
	for _, m := range []string{http.MethodGet, http.MethodPost, http.MethodPut, http.MethodDelete} {
		if !slices.ContainsFunc(served, func(s string) bool { return strings.HasPrefix(s, m+" ") }) {
			t.Errorf("no %s route", m)
		}
	}
}
