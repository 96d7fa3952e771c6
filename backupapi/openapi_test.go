package backupapi

import (
	"sort"
	"strings"
	"testing"

	"github.com/gorilla/mux"
	"sigs.k8s.io/yaml"
)

// TestOpenAPIDocumentsEveryRoute: every route New serves is in openapi.yaml
// with its method, and the document names no other.
func TestOpenAPIDocumentsEveryRoute(t *testing.T) {
	var doc struct {
		Paths map[string]map[string]any `json:"paths"`
	}
	if err := yaml.Unmarshal(OpenAPI, &doc); err != nil {
		t.Fatalf("openapi.yaml: %v", err)
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
	err := New(Options{}).(*mux.Router).Walk(func(route *mux.Route, _ *mux.Router, _ []*mux.Route) error {
		path, _ := route.GetPathTemplate()
		methods, _ := route.GetMethods()
		for _, m := range methods {
			served = append(served, m+" "+path)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	sort.Strings(documented)
	sort.Strings(served)
	if strings.Join(documented, "\n") != strings.Join(served, "\n") {
		t.Errorf("openapi.yaml documents\n%s\nthe router serves\n%s", strings.Join(documented, "\n"), strings.Join(served, "\n"))
	}
}
