package catalog

import (
	"encoding/json"
	"errors"
	"testing"
)

// FuzzValidateParameters feeds arbitrary request bodies to every action of
// a plan with a nested schema: the answer is the decoded object or a
// *ParameterError, never a panic.
func FuzzValidateParameters(f *testing.F) {
	c, err := Parse([]byte(overrideYAML))
	if err != nil {
		f.Fatalf("Parse: %v", err)
	}
	for _, seed := range []string{
		``, `null`, `{}`, `[]`, `"x"`, `1e400`, `{"read_only": true}`, `{"read_only": "yes"}`,
		`{"restore_from": {"backup_id": "bk-0123abcd"}}`, `{"restore_from": {"x": [1, {"y": null}]}}`,
		`{"locale": "C", "a": 1, "b": {}}`, `{"read_only": tru`, `{"\u0000": 1}`, `{"a~1b/c": 1}`,
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		for _, action := range []Action{ActionProvision, ActionUpdate, ActionBind} {
			params, err := c.ValidateParameters("custom-small", action, json.RawMessage(raw))
			if err == nil {
				if params == nil {
					t.Fatalf("%s %q: nil parameters and nil error", action, raw)
				}
				continue
			}
			var pe *ParameterError
			if !errors.As(err, &pe) {
				t.Fatalf("%s %q: error %#v, want *ParameterError", action, raw, err)
			}
			if pe.Msg == "" || pe.Rule == "" {
				t.Fatalf("%s %q: empty Msg or Rule in %#v", action, raw, pe)
			}
		}
	})
}
