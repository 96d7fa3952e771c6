package mgmtapi

import _ "embed"

// OpenAPI is the OpenAPI 3 document of this API (openapi.yaml).
//
//go:embed openapi.yaml
var OpenAPI []byte
