package catalog

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"

	"github.com/santhosh-tekuri/jsonschema/v6"
)

// draft04Metaschema compiles the JSON Schema draft-04 metaschema, the one
// Cloud Foundry's Cloud Controller validates every plan schema against.
func draft04Metaschema(t *testing.T) *jsonschema.Schema {
	t.Helper()
	meta, err := jsonschema.NewCompiler().Compile("http://json-schema.org/draft-04/schema")
	if err != nil {
		t.Fatalf("compile the draft-04 metaschema: %v", err)
	}
	return meta
}

// TestPublishedSchemasAreDraft04 reads every plan's provision, update and
// bind schema as GET /v2/catalog publishes them and checks what the Cloud
// Controller checks: "$schema" is the draft-04 URI, the document validates
// against the draft-04 metaschema, and no "$ref" leaves the document.
func TestPublishedSchemasAreDraft04(t *testing.T) {
	c, err := Default()
	if err != nil {
		t.Fatalf("Default: %v", err)
	}
	meta := draft04Metaschema(t)
	body, err := json.Marshal(c.BrokerServices())
	if err != nil {
		t.Fatal(err)
	}
	var services []struct {
		ID    string `json:"id"`
		Plans []struct {
			ID      string `json:"id"`
			Schemas struct {
				Instance struct {
					Create struct{ Parameters json.RawMessage } `json:"create"`
					Update struct{ Parameters json.RawMessage } `json:"update"`
				} `json:"service_instance"`
				Binding struct {
					Create struct{ Parameters json.RawMessage } `json:"create"`
				} `json:"service_binding"`
			} `json:"schemas"`
		} `json:"plans"`
	}
	if err := json.Unmarshal(body, &services); err != nil {
		t.Fatal(err)
	}
	checked := 0
	for _, s := range services {
		for _, p := range s.Plans {
			for name, raw := range map[string]json.RawMessage{
				"service_instance.create": p.Schemas.Instance.Create.Parameters,
				"service_instance.update": p.Schemas.Instance.Update.Parameters,
				"service_binding.create":  p.Schemas.Binding.Create.Parameters,
			} {
				doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(raw))
				if err != nil {
					t.Fatalf("plan %s %s: %v", p.ID, name, err)
				}
				obj, _ := doc.(map[string]any)
				if obj["$schema"] != Draft04 {
					t.Errorf("plan %s %s: $schema %v, want %s", p.ID, name, obj["$schema"], Draft04)
				}
				if err := meta.Validate(doc); err != nil {
					t.Errorf("plan %s %s breaks the draft-04 metaschema: %v", p.ID, name, err)
				}
				if ref, where, ok := externalRef(doc, ""); ok {
					t.Errorf("plan %s %s: $ref %q at %s leaves the document", p.ID, name, ref, where)
				}
				checked++
			}
		}
	}
	if checked != 11*3 {
		t.Errorf("checked %d schemas, want 33 (11 plans × provision, update, bind)", checked)
	}
}

// TestDraft04MetaschemaCatchesABrokenSchema proves the check above can fail:
// "required" must be an array of strings in draft-04.
func TestDraft04MetaschemaCatchesABrokenSchema(t *testing.T) {
	doc, _ := jsonschema.UnmarshalJSON(strings.NewReader(`{"$schema":"http://json-schema.org/draft-04/schema#","required":"x"}`))
	if err := draft04Metaschema(t).Validate(doc); err == nil {
		t.Fatal("draft-04 metaschema accepted required: \"x\"")
	}
}

// TestCatalogFileSchemaRulesNamePlanAndPath checks that a catalog file
// (CATALOG_FILE, read by Load at start) gets the Cloud Controller's rules:
// another "$schema", a schema breaking the draft-04 metaschema, and a "$ref"
// leaving the document are refused, and the error names the file, the
// plan, the schema and the path inside it.
func TestCatalogFileSchemaRulesNamePlanAndPath(t *testing.T) {
	tests := []struct {
		name     string
		old, new string
		wantAll  []string
	}{
		{"draft 2020-12", "update: {type: object, additionalProperties: false}",
			`update: {$schema: "https://json-schema.org/draft/2020-12/schema", type: object}`,
			[]string{`plan "custom-small"`, "schemas.update", `$schema "https://json-schema.org/draft/2020-12/schema"`, "draft-04"}},
		{"draft-04 without the #", "update: {type: object, additionalProperties: false}",
			`update: {$schema: "http://json-schema.org/draft-04/schema", type: object}`,
			[]string{`plan "custom-small"`, "schemas.update", "draft-04"}},
		{"draft-07", "bind: {type: object,", `bind: {$schema: "http://json-schema.org/draft-07/schema#", type: object,`,
			[]string{`plan "custom-small"`, "schemas.bind", "draft-07"}},
		{"$schema not a string", "update: {type: object, additionalProperties: false}", `update: {$schema: 4, type: object}`,
			[]string{`plan "custom-small"`, "schemas.update", "$schema 4"}},
		{"2020-12 keyword form", "backup_id: {type: string,", "backup_id: {type: string, minimum: 1, exclusiveMinimum: 3,",
			[]string{`plan "custom-small"`, "schemas.provision", `"/properties/restore_from/properties/backup_id/exclusiveMinimum"`}},
		{"external $ref", "locale: {enum:", "locale: {$ref: 'https://example.com/x.json', enum:",
			[]string{`plan "custom-small"`, "schemas.provision", `"https://example.com/x.json"`, `"/properties/locale/$ref"`, "outside the document"}},
		{"$ref to a metaschema the library knows", "locale: {enum:", "locale: {$ref: 'http://json-schema.org/draft-04/schema#', enum:",
			[]string{`plan "custom-small"`, "schemas.provision", "outside the document"}},
		{"relative $ref", "backup_id: {type: string,", "backup_id: {$ref: 'other.json#/x', type: string,",
			[]string{`plan "custom-small"`, "schemas.provision", `"other.json#/x"`, "outside the document"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			content := strings.Replace(overrideYAML, tt.old, tt.new, 1)
			if content == overrideYAML {
				t.Fatalf("test bug: %q not found in overrideYAML", tt.old)
			}
			path := writeFile(t, content)
			_, err := Load(path)
			if err == nil {
				t.Fatal("Load succeeded, want an error")
			}
			t.Log(err)
			for _, want := range append(tt.wantAll, path) {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("error %q does not contain %q", err, want)
				}
			}
		})
	}
}

// TestCatalogFileDraft04Accepted checks that a document naming draft-04
// itself, with a "$ref" inside the document, loads.
func TestCatalogFileDraft04Accepted(t *testing.T) {
	content := strings.Replace(overrideYAML, "update: {type: object, additionalProperties: false}",
		`update: {$schema: "http://json-schema.org/draft-04/schema#", type: object, properties: {a: {$ref: "#/definitions/a"}}, definitions: {a: {type: integer, minimum: 1, exclusiveMinimum: true}}}`, 1)
	c, err := Load(writeFile(t, content))
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	if _, err := c.ValidateParameters("custom-small", ActionUpdate, json.RawMessage(`{"a": 1}`)); err == nil {
		t.Error("a = 1 accepted, want draft-04 exclusiveMinimum: true to refuse it")
	}
	if _, err := c.ValidateParameters("custom-small", ActionUpdate, json.RawMessage(`{"a": 2}`)); err != nil {
		t.Errorf("a = 2: %v", err)
	}
}
