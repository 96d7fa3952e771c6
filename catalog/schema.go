package catalog

import (
	"errors"
	"fmt"
	"maps"
	"net/url"
	"slices"
	"strings"

	"github.com/santhosh-tekuri/jsonschema/v6"
)

// compiledSchema is one plan's schema for one action, compiled, with the
// document it came from (read back to list allowed parameters).
type compiledSchema struct {
	schema *jsonschema.Schema
	doc    map[string]any
	url    string // where the document was registered; prefix of error schema URLs
	action Action
}

// planSchemas holds the compiled schemas of one plan, one per Action.
type planSchemas map[Action]*compiledSchema

// compileAll compiles every plan's schemas. Its error names the service,
// the plan and the schema, on one line.
func compileAll(c *Catalog) (map[string]planSchemas, error) {
	var p problems
	all := map[string]planSchemas{}
	for _, s := range c.Services {
		for _, plan := range s.Plans {
			where := fmt.Sprintf("service %q: plan %q", s.ID, plan.ID)
			ps, err := compilePlan(plan)
			if err != nil {
				p.add(where, "%s", err)
				continue
			}
			all[plan.ID] = ps
		}
	}
	if err := p.err(); err != nil {
		return nil, err
	}
	return all, nil
}

// compilePlan compiles the three schemas of a plan as JSON Schema draft-04
// (the only draft Cloud Foundry's Cloud Controller accepts), formats
// asserted; compiling validates each against the draft-04 metaschema. A
// "$ref" that does not start with "#" is refused before compiling (OSB v2.17
// "Schemas": "Schemas MUST NOT contain any external references"), so that
// not even the metaschemas the library knows by heart are reachable.
func compilePlan(plan Plan) (planSchemas, error) {
	ps := planSchemas{}
	for _, s := range []struct {
		action Action
		field  string
		doc    map[string]any
	}{
		{ActionProvision, "schemas.provision", plan.Schemas.Provision},
		{ActionUpdate, "schemas.update", plan.Schemas.Update},
		{ActionBind, "schemas.bind", plan.Schemas.Bind},
	} {
		cs, err := compileSchema(plan.ID, s.action, s.doc)
		if err != nil {
			return nil, fmt.Errorf("%s does not compile: %w", s.field, err)
		}
		ps[s.action] = cs
	}
	return ps, nil
}

func compileSchema(planID string, action Action, doc map[string]any) (*compiledSchema, error) {
	if doc == nil {
		return nil, fmt.Errorf("no schema")
	}
	if ref, where, ok := externalRef(doc, ""); ok {
		return nil, fmt.Errorf("$ref %q at %q points outside the document; OSB forbids external references in schemas", ref, where)
	}
	loc := "https://pgbroker.invalid/catalog/plans/" + url.PathEscape(planID) + "/" + string(action) + ".json"
	c := jsonschema.NewCompiler()
	c.DefaultDraft(jsonschema.Draft4)
	c.AssertFormat()
	c.UseLoader(jsonschema.SchemeURLLoader{}) // no file, no network: external $ref fails
	// The compiler gets its own copy: callers may read Plan.Schemas freely.
	if err := c.AddResource(loc, copyObject(doc)); err != nil {
		return nil, errors.New(compileProblem(err, loc))
	}
	sch, err := c.Compile(loc)
	if err != nil {
		return nil, errors.New(compileProblem(err, loc))
	}
	return &compiledSchema{schema: sch, doc: doc, url: loc, action: action}, nil
}

// compileProblem rewrites a compile error as one short line: where in the
// document the schema breaks the draft-04 metaschema, or which
// reference is external. loc, our internal URL, is left out.
func compileProblem(err error, loc string) string {
	var sve *jsonschema.SchemaValidationError
	var verr *jsonschema.ValidationError
	if errors.As(err, &sve) && errors.As(sve.Err, &verr) {
		leaf := leafErrors(verr, nil)[0]
		return fmt.Sprintf("not valid JSON Schema (draft-04) at %q: %s",
			"/"+strings.Join(leaf.InstanceLocation, "/"), leaf.ErrorKind.LocalizedString(english()))
	}
	var lue *jsonschema.LoadURLError
	if errors.As(err, &lue) {
		return fmt.Sprintf("$ref %q points outside the document; OSB forbids external references in schemas", lue.URL)
	}
	return strings.ReplaceAll(oneLine(err.Error()), loc, "schema")
}

// externalRef finds a "$ref" whose value is a string not starting with "#"
// (a reference that leaves the document), anywhere in v, and returns it with
// its JSON pointer. Object keys are walked in sorted order so the first one
// reported is always the same.
func externalRef(v any, at string) (ref, where string, found bool) {
	switch v := v.(type) {
	case map[string]any:
		if r, ok := v["$ref"].(string); ok && !strings.HasPrefix(r, "#") {
			return r, at + "/$ref", true
		}
		for _, k := range slices.Sorted(maps.Keys(v)) {
			tok := strings.NewReplacer("~", "~0", "/", "~1").Replace(k)
			if ref, where, found = externalRef(v[k], at+"/"+tok); found {
				return
			}
		}
	case []any:
		for i, e := range v {
			if ref, where, found = externalRef(e, fmt.Sprintf("%s/%d", at, i)); found {
				return
			}
		}
	}
	return "", "", false
}

// copyObject deep-copies a decoded JSON object.
func copyObject(m map[string]any) map[string]any {
	c, _ := copyValue(m).(map[string]any)
	return c
}

// copyValue deep-copies a decoded JSON value; scalars are shared.
func copyValue(v any) any {
	switch v := v.(type) {
	case map[string]any:
		if v == nil {
			return v
		}
		m := make(map[string]any, len(v))
		for k, e := range v {
			m[k] = copyValue(e)
		}
		return m
	case []any:
		if v == nil {
			return v
		}
		s := make([]any, len(v))
		for i, e := range v {
			s[i] = copyValue(e)
		}
		return s
	}
	return v
}
