package mgmtapi

import (
	_ "embed"
	"net/http"
)

// OpenAPI is the OpenAPI 3 document of the management API (openapi.yaml):
// every route of Handler.
//
//go:embed openapi.yaml
var OpenAPI []byte

// DocumentPath is where Handler serves OpenAPI.
const DocumentPath = "/api/openapi.yaml"

// serveOpenAPI answers GET DocumentPath with the document, as application/yaml
// (RFC 9512).
func serveOpenAPI(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "application/yaml")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	_, _ = w.Write(OpenAPI)
}
