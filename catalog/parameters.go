package catalog

import (
	"bytes"
	"cmp"
	"encoding/json"
	"fmt"
	"maps"
	"net/url"
	"slices"
	"strings"

	"github.com/santhosh-tekuri/jsonschema/v6"
	"github.com/santhosh-tekuri/jsonschema/v6/kind"
	"golang.org/x/text/language"
	"golang.org/x/text/message"
)

// ParameterError says which parameter of a request is wrong and why. The
// broker answers it with 400 Bad Request and Msg as the description
// (DESIGN.md "Errors and bad input").
type ParameterError struct {
	// Key is the offending parameter, a dotted path when nested
	// ("restore_from.backup_id"), "plan_id" for an unknown plan, "" when the
	// whole body is wrong (not JSON, not an object).
	Key string
	// Rule is the JSON Schema keyword broken ("additionalProperties",
	// "type", "pattern", "required", "enum", ...), "json" for a body that is
	// not JSON, "enum" for an unknown plan.
	Rule string
	// Msg is a sentence a user can act on, naming Key and Rule.
	Msg string
}

// Error returns Msg.
func (e *ParameterError) Error() string { return e.Msg }

// ValidateParameters checks the raw parameters of an OSB request against
// the schema of plan planID for action: Schemas.Provision, Update or Bind.
// Absent parameters (nil, empty, or JSON null) count as {}.
//
// It returns the decoded object; numbers in it are json.Number, exact.
// Errors: *ParameterError when the parameters break the schema (one
// violation is reported: among the deepest causes, the first by key), are
// not JSON (Rule "json"), or are not an object (Rule "type"), and when
// planID is not in the catalog (Key "plan_id", Rule "enum"). An action other than
// the three Action constants is a programming error, returned as a plain
// error.
func (c *Catalog) ValidateParameters(planID string, action Action, raw json.RawMessage) (map[string]any, error) {
	if _, _, ok := c.Plan(planID); !ok {
		return nil, &ParameterError{
			Key:  "plan_id",
			Rule: "enum",
			Msg:  fmt.Sprintf("plan_id %q is not a plan of this broker (enum): pick a plan id from the catalog", planID),
		}
	}
	cs, err := c.schemaFor(planID, action)
	if err != nil {
		return nil, err
	}
	params, perr := decodeParameters(raw)
	if perr != nil {
		return nil, perr
	}
	if err := cs.schema.Validate(params); err != nil {
		verr, ok := err.(*jsonschema.ValidationError)
		if !ok {
			return nil, fmt.Errorf("validate %s parameters of plan %q: %w", action, planID, err)
		}
		return nil, cs.parameterError(verr)
	}
	return params, nil
}

// schemaFor returns the compiled schema of a plan for action. A Catalog
// built by hand rather than by Parse has none cached; its schema is then
// compiled for this call only.
func (c *Catalog) schemaFor(planID string, action Action) (*compiledSchema, error) {
	switch action {
	case ActionProvision, ActionUpdate, ActionBind:
	default:
		return nil, fmt.Errorf("validate parameters: unknown action %q", action)
	}
	_, plan, _ := c.Plan(planID)
	if cs := c.schemas[plan.ID][action]; cs != nil {
		return cs, nil
	}
	ps, err := compilePlan(plan)
	if err != nil {
		return nil, fmt.Errorf("compile schemas of plan %q: %w", planID, err)
	}
	return ps[action], nil
}

// decodeParameters decodes the request body's parameters as a JSON object.
func decodeParameters(raw json.RawMessage) (map[string]any, *ParameterError) {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || string(raw) == "null" {
		return map[string]any{}, nil
	}
	v, err := jsonschema.UnmarshalJSON(bytes.NewReader(raw))
	if err != nil {
		return nil, &ParameterError{
			Rule: "json",
			Msg:  fmt.Sprintf("parameters are not valid JSON (json): %s", oneLine(err.Error())),
		}
	}
	params, ok := v.(map[string]any)
	if !ok {
		return nil, &ParameterError{
			Rule: "type",
			Msg:  fmt.Sprintf("parameters must be a JSON object (type), got %s", jsonType(v)),
		}
	}
	return params, nil
}

// parameterError turns a schema violation into a ParameterError. It walks
// the error tree down to its leaves, the deepest causes, and reports the
// first by parameter key then keyword, so that the same input always gives
// the same message.
func (cs *compiledSchema) parameterError(verr *jsonschema.ValidationError) *ParameterError {
	leaves := leafErrors(verr, nil)
	slices.SortStableFunc(leaves, func(a, b *jsonschema.ValidationError) int {
		if n := slices.Compare(leafKey(a), leafKey(b)); n != 0 {
			return n
		}
		return cmp.Compare(ruleOf(a.ErrorKind), ruleOf(b.ErrorKind))
	})
	leaf := leaves[0]
	path := leaf.InstanceLocation
	rule := ruleOf(leaf.ErrorKind)
	key := strings.Join(path, ".")
	switch k := leaf.ErrorKind.(type) {
	case *kind.AdditionalProperties:
		unknown := slices.Sorted(slices.Values(k.Properties))
		key = strings.Join(withFirst(path, unknown), ".")
		return &ParameterError{Key: key, Rule: rule, Msg: fmt.Sprintf("%s not allowed (%s): %s",
			describeKeys(path, unknown), rule, cs.allowed(leaf.SchemaURL, path))}
	case *kind.Required:
		missing := slices.Sorted(slices.Values(k.Missing))
		key = strings.Join(withFirst(path, missing), ".")
		return &ParameterError{Key: key, Rule: rule, Msg: fmt.Sprintf("%s required (%s)", describeKeys(path, missing), rule)}
	case *kind.Type:
		if key == "" {
			return &ParameterError{Rule: rule, Msg: fmt.Sprintf("parameters must be of type %s (%s), got %s", strings.Join(k.Want, " or "), rule, k.Got)}
		}
		return &ParameterError{Key: key, Rule: rule, Msg: fmt.Sprintf("parameter %q must be of type %s (%s), got %s", key, strings.Join(k.Want, " or "), rule, k.Got)}
	case *kind.Enum:
		want := make([]string, len(k.Want))
		for i, w := range k.Want {
			b, _ := json.Marshal(w)
			want[i] = string(b)
		}
		return &ParameterError{Key: key, Rule: rule, Msg: fmt.Sprintf("%s must be one of %s (%s)", subject(key), strings.Join(want, ", "), rule)}
	case *kind.Pattern:
		return &ParameterError{Key: key, Rule: rule, Msg: fmt.Sprintf("%s must match the pattern %q (%s), got %q", subject(key), k.Want, rule, k.Got)}
	case *kind.FalseSchema:
		return &ParameterError{Key: key, Rule: rule, Msg: fmt.Sprintf("%s is not allowed (%s)", subject(key), rule)}
	}
	return &ParameterError{Key: key, Rule: rule, Msg: fmt.Sprintf("%s is invalid (%s): %s", subject(key), rule, leaf.ErrorKind.LocalizedString(english()))}
}

// english returns a printer for the library's own wording of an error.
func english() *message.Printer { return message.NewPrinter(language.English) }

// leafKey is the parameter path a leaf error is about: its instance
// location, plus the first offending property for additionalProperties
// and required.
func leafKey(e *jsonschema.ValidationError) []string {
	switch k := e.ErrorKind.(type) {
	case *kind.AdditionalProperties:
		return withFirst(e.InstanceLocation, k.Properties)
	case *kind.Required:
		return withFirst(e.InstanceLocation, k.Missing)
	}
	return e.InstanceLocation
}

// withFirst returns path extended with the smallest of names, or path
// alone when names is empty.
func withFirst(path, names []string) []string {
	if len(names) == 0 {
		return path
	}
	return append(slices.Clip(path), slices.Min(names))
}

// leafErrors collects the errors of the tree that have no causes.
func leafErrors(e *jsonschema.ValidationError, acc []*jsonschema.ValidationError) []*jsonschema.ValidationError {
	if len(e.Causes) == 0 {
		return append(acc, e)
	}
	for _, c := range e.Causes {
		acc = leafErrors(c, acc)
	}
	return acc
}

// ruleOf names the JSON Schema keyword behind an error kind.
func ruleOf(k jsonschema.ErrorKind) string {
	if kw := k.KeywordPath(); len(kw) > 0 {
		return kw[0]
	}
	switch k.(type) {
	case *kind.FalseSchema:
		return "false"
	case *kind.Not:
		return "not"
	case *kind.InvalidJsonValue:
		return "type"
	}
	return "schema"
}

func joinKey(path []string, name string) string {
	return strings.Join(append(slices.Clip(path), name), ".")
}

// subject is how a message names a key: `parameter "x"`, or "parameters".
func subject(key string) string {
	if key == "" {
		return "parameters"
	}
	return fmt.Sprintf("parameter %q", key)
}

// describeKeys names keys under path: `parameter "a.b" is` or
// `parameters "a.b", "a.c" are`.
func describeKeys(path, names []string) string {
	if len(names) == 0 {
		return subject(strings.Join(path, ".")) + " is"
	}
	quoted := make([]string, len(names))
	for i, n := range names {
		quoted[i] = fmt.Sprintf("%q", joinKey(path, n))
	}
	if len(quoted) == 1 {
		return "parameter " + quoted[0] + " is"
	}
	return "parameters " + strings.Join(quoted, ", ") + " are"
}

// allowed says which keys the object at path accepts, read from the
// schema object whose additionalProperties failed (schemaURL is its
// location, "<document URL>#<JSON pointer, URL-escaped>").
func (cs *compiledSchema) allowed(schemaURL string, path []string) string {
	where := "parameters"
	if len(path) > 0 {
		where = fmt.Sprintf("keys of %q", strings.Join(path, "."))
	}
	props, ok := cs.properties(schemaURL)
	if !ok {
		return "remove it"
	}
	if len(props) == 0 {
		if len(path) == 0 {
			return fmt.Sprintf("this plan accepts no parameters on %s", cs.action)
		}
		return fmt.Sprintf("%q accepts no keys", strings.Join(path, "."))
	}
	return fmt.Sprintf("allowed %s are %s", where, strings.Join(props, ", "))
}

// properties returns the sorted "properties" names of the schema object
// that schemaURL points into, when it lies in this document.
func (cs *compiledSchema) properties(schemaURL string) ([]string, bool) {
	ptr, ok := strings.CutPrefix(schemaURL, cs.url+"#")
	if !ok {
		return nil, false
	}
	ptr = strings.TrimSuffix(ptr, "/additionalProperties")
	var node any = cs.doc
	for _, tok := range strings.Split(ptr, "/") {
		if tok == "" {
			continue
		}
		tok, err := url.PathUnescape(tok)
		if err != nil {
			return nil, false
		}
		tok = strings.NewReplacer("~1", "/", "~0", "~").Replace(tok)
		switch n := node.(type) {
		case map[string]any:
			node = n[tok]
		case []any:
			var i int
			if _, err := fmt.Sscanf(tok, "%d", &i); err != nil || i < 0 || i >= len(n) {
				return nil, false
			}
			node = n[i]
		default:
			return nil, false
		}
	}
	obj, ok := node.(map[string]any)
	if !ok {
		return nil, false
	}
	props, _ := obj["properties"].(map[string]any)
	return slices.Sorted(maps.Keys(props)), true
}
