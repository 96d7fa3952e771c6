package catalog

import "testing"

// FuzzParse feeds arbitrary catalog files to Parse: it returns a catalog
// or an error, never panics.
func FuzzParse(f *testing.F) {
	f.Add(overrideYAML)
	f.Add(string(defaultYAML))
	f.Add(`{"services": [{"id": "s", "plans": [{"id": "p", "schemas": {"provision": {"$ref": "#/x"}}}]}]}`)
	f.Add(`services: [{plans: [{schemas: {bind: {properties: {a: {pattern: "("}}}}}]}]`)
	f.Fuzz(func(t *testing.T, data string) {
		c, err := Parse([]byte(data))
		if err == nil && len(c.Services) == 0 {
			t.Fatalf("Parse(%q) = empty catalog, nil error", data)
		}
	})
}
