package catalog

import (
	"encoding/json"
	"errors"
	"reflect"
	"strings"
	"testing"
)

func TestValidateParametersDefaultCatalog(t *testing.T) {
	c, err := Default()
	if err != nil {
		t.Fatalf("Default: %v", err)
	}
	tests := []struct {
		name    string
		plan    string
		action  Action
		raw     string
		want    map[string]any // when no error
		wantKey string
		rule    string
		msgHas  []string
	}{
		{name: "nil body is empty", plan: "postgresql-sandbox", action: ActionProvision, raw: "", want: map[string]any{}},
		{name: "null is empty", plan: "postgresql-starter-512", action: ActionUpdate, raw: "null", want: map[string]any{}},
		{name: "empty object", plan: "postgresql-business-8192", action: ActionProvision, raw: " {} ", want: map[string]any{}},
		{name: "read_only bind", plan: "postgresql-starter-512", action: ActionBind, raw: `{"read_only": true}`, want: map[string]any{"read_only": true}},
		{name: "unknown bind key", plan: "postgresql-starter-512", action: ActionBind, raw: `{"foo": 1}`,
			wantKey: "foo", rule: "additionalProperties", msgHas: []string{`"foo"`, "(additionalProperties)", "allowed parameters are read_only"}},
		{name: "unknown provision key", plan: "postgresql-sandbox", action: ActionProvision, raw: `{"version": "16"}`,
			wantKey: "version", rule: "additionalProperties", msgHas: []string{`"version"`, "(additionalProperties)", "allowed parameters are extensions"}},
		{name: "extension name breaks the pattern", plan: "postgresql-sandbox", action: ActionProvision, raw: `{"extensions": ["Bad Name"]}`,
			wantKey: "extensions.0", rule: "pattern", msgHas: []string{"extensions"}},
		{name: "extension listed twice", plan: "postgresql-sandbox", action: ActionUpdate, raw: `{"extensions": ["hstore", "hstore"]}`,
			wantKey: "extensions", rule: "uniqueItems", msgHas: []string{"extensions"}},
		{name: "force_tls not a boolean", plan: "postgresql-starter-512", action: ActionUpdate, raw: `{"force_tls": "yes"}`,
			wantKey: "force_tls", rule: "type", msgHas: []string{"force_tls"}},
		{name: "force_tls on provision", plan: "postgresql-starter-512", action: ActionProvision, raw: `{"force_tls": true}`,
			wantKey: "force_tls", rule: "additionalProperties", msgHas: []string{"force_tls"}},
		{name: "several unknown keys name the first", plan: "postgresql-sandbox", action: ActionBind, raw: `{"zeta": 1, "alpha": 2}`,
			wantKey: "alpha", rule: "additionalProperties", msgHas: []string{`"alpha"`, `"zeta"`}},
		{name: "read_only wrong type", plan: "postgresql-starter-512", action: ActionBind, raw: `{"read_only": "yes"}`,
			wantKey: "read_only", rule: "type", msgHas: []string{`"read_only"`, "boolean", "(type)", "got string"}},
		{name: "malformed JSON", plan: "postgresql-sandbox", action: ActionBind, raw: `{"read_only": tru`,
			wantKey: "", rule: "json", msgHas: []string{"not valid JSON"}},
		{name: "trailing data", plan: "postgresql-sandbox", action: ActionBind, raw: `{} {}`,
			wantKey: "", rule: "json"},
		{name: "array body", plan: "postgresql-sandbox", action: ActionBind, raw: `[{"read_only": true}]`,
			wantKey: "", rule: "type", msgHas: []string{"JSON object", "got array"}},
		{name: "string body", plan: "postgresql-sandbox", action: ActionProvision, raw: `"x"`,
			wantKey: "", rule: "type", msgHas: []string{"got string"}},
		{name: "unknown plan", plan: "postgresql-huge", action: ActionProvision, raw: `{}`,
			wantKey: "plan_id", rule: "enum", msgHas: []string{`"postgresql-huge"`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var raw json.RawMessage
			if tt.raw != "" {
				raw = json.RawMessage(tt.raw)
			}
			got, err := c.ValidateParameters(tt.plan, tt.action, raw)
			if tt.rule == "" {
				if err != nil {
					t.Fatalf("ValidateParameters: %v", err)
				}
				if !reflect.DeepEqual(got, tt.want) {
					t.Errorf("parameters = %v, want %v", got, tt.want)
				}
				return
			}
			checkParameterError(t, err, tt.wantKey, tt.rule, tt.msgHas)
		})
	}
}

func TestValidateParametersNestedSchema(t *testing.T) {
	c, err := Parse([]byte(overrideYAML))
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	tests := []struct {
		name    string
		raw     string
		wantKey string
		rule    string
		msgHas  []string
	}{
		{name: "valid", raw: `{"restore_from": {"backup_id": "bk-0123abcd"}, "locale": "fr_FR.UTF-8"}`},
		{name: "nested pattern", raw: `{"restore_from": {"backup_id": "latest"}}`,
			wantKey: "restore_from.backup_id", rule: "pattern", msgHas: []string{`"restore_from.backup_id"`, "^bk-[0-9a-f]{8}$", "(pattern)"}},
		{name: "nested required", raw: `{"restore_from": {}}`,
			wantKey: "restore_from.backup_id", rule: "required", msgHas: []string{`"restore_from.backup_id"`, "(required)"}},
		{name: "nested unknown key", raw: `{"restore_from": {"backup_id": "bk-0123abcd", "at": "now"}}`,
			wantKey: "restore_from.at", rule: "additionalProperties", msgHas: []string{`"restore_from.at"`, `allowed keys of "restore_from" are backup_id`}},
		{name: "enum", raw: `{"locale": "C"}`,
			wantKey: "locale", rule: "enum", msgHas: []string{`"locale"`, `"en_US.UTF-8", "fr_FR.UTF-8"`, "(enum)"}},
		{name: "unknown top-level key lists allowed", raw: `{"size": 3}`,
			wantKey: "size", rule: "additionalProperties", msgHas: []string{"allowed parameters are locale, restore_from"}},
		{name: "same answer every time: first key wins", raw: `{"restore_from": {"backup_id": 7}, "locale": "C", "x": 1}`,
			wantKey: "locale", rule: "enum"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for range 20 { // map order varies between runs; the answer must not
				_, err := c.ValidateParameters("custom-small", ActionProvision, json.RawMessage(tt.raw))
				if tt.rule == "" {
					if err != nil {
						t.Fatalf("ValidateParameters: %v", err)
					}
					return
				}
				checkParameterError(t, err, tt.wantKey, tt.rule, tt.msgHas)
			}
		})
	}
}

func TestValidateParametersKeepsExactNumbers(t *testing.T) {
	c, err := Parse([]byte(strings.Replace(overrideYAML,
		"update: {type: object, additionalProperties: false}",
		"update: {type: object, properties: {n: {type: integer}}}", 1)))
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	got, err := c.ValidateParameters("custom-small", ActionUpdate, json.RawMessage(`{"n": 9007199254740993}`))
	if err != nil {
		t.Fatalf("ValidateParameters: %v", err)
	}
	if got["n"] != json.Number("9007199254740993") {
		t.Errorf("n = %#v, want json.Number 9007199254740993", got["n"])
	}
}

func TestValidateParametersFollowsLocalRef(t *testing.T) {
	const schema = `{type: object, additionalProperties: false, properties: {restore_from: {$ref: "#/definitions/restore"}}, ` +
		`definitions: {restore: {type: object, additionalProperties: false, properties: {backup_id: {type: string}}}}}`
	c, err := Parse([]byte(strings.Replace(overrideYAML,
		"update: {type: object, additionalProperties: false}", "update: "+schema, 1)))
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	_, err = c.ValidateParameters("custom-large", ActionUpdate, json.RawMessage(`{"restore_from": {"id": "x"}}`))
	checkParameterError(t, err, "restore_from.id", "additionalProperties", []string{"are backup_id"})
}

func TestValidateParametersHandBuiltCatalog(t *testing.T) {
	def, err := Default()
	if err != nil {
		t.Fatalf("Default: %v", err)
	}
	c := &Catalog{Services: def.Services} // no compiled schemas
	if _, err := c.ValidateParameters("postgresql-sandbox", ActionBind, json.RawMessage(`{"read_only": false}`)); err != nil {
		t.Errorf("valid parameters: %v", err)
	}
	_, err = c.ValidateParameters("postgresql-sandbox", ActionBind, json.RawMessage(`{"x": 1}`))
	checkParameterError(t, err, "x", "additionalProperties", nil)
}

func TestValidateParametersUnknownActionIsNotAParameterError(t *testing.T) {
	c, err := Default()
	if err != nil {
		t.Fatalf("Default: %v", err)
	}
	_, err = c.ValidateParameters("postgresql-sandbox", Action("deprovision"), nil)
	var pe *ParameterError
	if err == nil || errors.As(err, &pe) {
		t.Errorf("error = %#v, want a plain error (programming mistake, not bad input)", err)
	}
}

func checkParameterError(t *testing.T, err error, key, rule string, msgHas []string) {
	t.Helper()
	var pe *ParameterError
	if !errors.As(err, &pe) {
		t.Fatalf("error = %#v, want *ParameterError", err)
	}
	t.Log(pe.Msg)
	if pe.Key != key || pe.Rule != rule {
		t.Errorf("Key, Rule = %q, %q; want %q, %q (msg %q)", pe.Key, pe.Rule, key, rule, pe.Msg)
	}
	if pe.Error() != pe.Msg {
		t.Errorf("Error() = %q, want Msg %q", pe.Error(), pe.Msg)
	}
	for _, want := range msgHas {
		if !strings.Contains(pe.Msg, want) {
			t.Errorf("Msg %q does not contain %q", pe.Msg, want)
		}
	}
}

func TestValidateParametersAllowedKeysOfEscapedProperty(t *testing.T) {
	const schema = `{type: object, properties: {"tls/ssl opts": {type: object, additionalProperties: false, properties: {mode: {}, "ca~cert": {}}}}}`
	c, err := Parse([]byte(strings.Replace(overrideYAML,
		"update: {type: object, additionalProperties: false}", "update: "+schema, 1)))
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	_, err = c.ValidateParameters("custom-small", ActionUpdate, json.RawMessage(`{"tls/ssl opts": {"verify": true}}`))
	checkParameterError(t, err, "tls/ssl opts.verify", "additionalProperties", []string{`allowed keys of "tls/ssl opts" are ca~cert, mode`})
}
