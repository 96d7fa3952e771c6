package mgmtapi_test

import (
	"context"
	"io"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers/gorillamux"

	"github.com/pgbroker/pgbroker/mgmtapi"
)

// TestAnswersMatchTheDocumentedSchemas: answers the API gives without a
// store or an instance (the document itself, and refused bad input) have a
// status the document lists for the operation and a body its schema accepts
// (kin-openapi's openapi3filter).
func TestAnswersMatchTheDocumentedSchemas(t *testing.T) {
	doc := loadDocument(t)
	router, err := gorillamux.NewRouter(doc)
	if err != nil {
		t.Fatal(err)
	}
	handler := mgmtapi.New(mgmtapi.Options{}).Handler()
	const server = "http://127.0.0.1:8080" // the document's server
	cases := []struct{ method, path, body string }{
		{"GET", "/api/openapi.yaml", ""},
		{"POST", "/api/instances/my-db/users", `{"username":"abcde"}`},
		{"POST", "/api/instances/my-db/users", `{"username":"myuser","superuser":true}`},
		{"PUT", "/api/instances/my-db/users/myuser/password", `{"password":"short"}`},
		{"PUT", "/api/instances/my-db/extensions/postgis", ""},
		{"DELETE", "/api/instances/my-db/extensions/adminpack", ""},
	}
	for _, c := range cases {
		t.Run(c.method+" "+c.path, func(t *testing.T) {
			req := httptest.NewRequest(c.method, server+c.path, strings.NewReader(c.body))
			req.Header.Set("Content-Type", "application/json")
			rec := httptest.NewRecorder()
			handler.ServeHTTP(rec, req)
			route, params, err := router.FindRoute(req)
			if err != nil {
				t.Fatalf("the document has no operation for %s %s: %v", c.method, c.path, err)
			}
			err = openapi3filter.ValidateResponse(context.Background(), &openapi3filter.ResponseValidationInput{
				RequestValidationInput: &openapi3filter.RequestValidationInput{Request: req, PathParams: params, Route: route},
				Status:                 rec.Code,
				Header:                 rec.Header(),
				Body:                   io.NopCloser(strings.NewReader(rec.Body.String())),
				Options:                &openapi3filter.Options{IncludeResponseStatus: true},
			})
			if err != nil {
				t.Errorf("%d %s does not match openapi.yaml: %v", rec.Code, rec.Body.String(), err)
			}
		})
	}
}
