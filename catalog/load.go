package catalog

import (
	_ "embed"
	"fmt"
	"os"
)

// defaultYAML is the default offer. Source: DESIGN.md "Catalog (default)".
//
//go:embed catalog.yaml
var defaultYAML []byte

// Default returns the catalog embedded in the binary (catalog.yaml: one
// service "postgresql" with the Sandbox, Starter and Business plans of
// DESIGN.md "Catalog (default)"). Each call returns a fresh Catalog. The
// error is non-nil only if the embedded file is broken, which a test rules out.
func Default() (*Catalog, error) {
	c, err := Parse(defaultYAML)
	if err != nil {
		return nil, fmt.Errorf("parse embedded catalog.yaml: %w", err)
	}
	return c, nil
}

// Load returns the catalog an operator gave in the file at path, YAML or
// JSON in the shape of catalog.yaml; the file replaces the default catalog
// whole. An empty path means no override: Load returns Default(). Errors:
// the file cannot be read, or Parse rejects it (the message names the file).
func Load(path string) (*Catalog, error) {
	if path == "" {
		return Default()
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read catalog file: %w", err)
	}
	c, err := Parse(data)
	if err != nil {
		return nil, fmt.Errorf("catalog file %s: %w", path, err)
	}
	return c, nil
}

// Parse decodes a catalog from YAML or JSON in the shape of catalog.yaml
// (lower_snake_case keys), checks it and compiles every plan's schemas.
//
// It rejects: unknown or duplicate keys; a missing or duplicate service or
// plan id or name; a tier other than sandbox, starter or business; memory,
// CPU, disk, nodes, gateways or max_connections not above 0; negative backup
// counts; a maintenance_info version that is not semver; a schema that is not
// a JSON object, is over 64 kB (OSB limit), names a "$schema" other than
// Draft04, breaks the draft-04 metaschema or holds a "$ref" leaving the document. The error names the service, the
// plan and the field, on one line; when several things are wrong it lists
// them all, separated by "; ".
func Parse(data []byte) (*Catalog, error) {
	c, err := decodeFile(data)
	if err != nil {
		return nil, err
	}
	if err := check(c); err != nil {
		return nil, err
	}
	schemas, err := compileAll(c)
	if err != nil {
		return nil, err
	}
	c.schemas = schemas
	return c, nil
}
