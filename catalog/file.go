package catalog

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/santhosh-tekuri/jsonschema/v6"
	"sigs.k8s.io/yaml"
)

// The file* types are the on-disk shape of catalog.yaml: lower_snake_case
// keys, decoded strictly. They stay unexported so the public types carry no
// encoding concerns.

type fileCatalog struct {
	Services []json.RawMessage `json:"services"`
}

type fileService struct {
	ID                   string              `json:"id"`
	Name                 string              `json:"name"`
	Description          string              `json:"description"`
	Tags                 []string            `json:"tags"`
	Bindable             bool                `json:"bindable"`
	PlanUpdateable       bool                `json:"plan_updateable"`
	InstancesRetrievable bool                `json:"instances_retrievable"`
	BindingsRetrievable  bool                `json:"bindings_retrievable"`
	Metadata             fileServiceMetadata `json:"metadata"`
	MaintenanceInfo      fileMaintenanceInfo `json:"maintenance_info"`
	Plans                []json.RawMessage   `json:"plans"`
}

type fileServiceMetadata struct {
	DisplayName         string `json:"display_name"`
	ImageURL            string `json:"image_url"`
	LongDescription     string `json:"long_description"`
	ProviderDisplayName string `json:"provider_display_name"`
	DocumentationURL    string `json:"documentation_url"`
	SupportURL          string `json:"support_url"`
}

type fileMaintenanceInfo struct {
	Version     string `json:"version"`
	Description string `json:"description"`
}

type filePlan struct {
	ID             string `json:"id"`
	Name           string `json:"name"`
	Description    string `json:"description"`
	Tier           string `json:"tier"`
	Free           bool   `json:"free"`
	MemoryMiB      int    `json:"memory_mib"`
	CPUMHz         int    `json:"cpu_mhz"`
	DiskMiB        int    `json:"disk_mib"`
	Nodes          int    `json:"nodes"`
	Gateways       int    `json:"gateways"`
	MaxConnections int    `json:"max_connections"`
	// AutovacuumNaptimeS is optional: 0 (absent) means PostgreSQL's 60.
	AutovacuumNaptimeS int              `json:"autovacuum_naptime_s"`
	Backups            fileBackups      `json:"backups"`
	Metadata           filePlanMetadata `json:"metadata"`
	Schemas            fileSchemas      `json:"schemas"`
}

type fileBackups struct {
	Daily       bool `json:"daily"`
	DailyKept   int  `json:"daily_kept"`
	WeeklyKept  int  `json:"weekly_kept"`
	MonthlyKept int  `json:"monthly_kept"`
	ManualKept  int  `json:"manual_kept"`
	PITRDays    int  `json:"pitr_days"`
}

type filePlanMetadata struct {
	DisplayName string     `json:"display_name"`
	Bullets     []string   `json:"bullets"`
	Costs       []fileCost `json:"costs"`
}

type fileCost struct {
	Unit   string             `json:"unit"`
	Amount map[string]float64 `json:"amount"`
}

// fileSchemas stays raw so that schema documents keep exact numbers
// (json.Number) and any keyword, known to us or not.
type fileSchemas struct {
	Provision json.RawMessage `json:"provision"`
	Update    json.RawMessage `json:"update"`
	Bind      json.RawMessage `json:"bind"`
}

// maxSchemaBytes is the OSB limit on one schema document (v2.17, "Schemas":
// "Schemas MUST NOT be larger than 64kB").
const maxSchemaBytes = 64 * 1024

// Draft04 is the only "$schema" a plan schema may name, and the one Parse
// gives documents that name none. Cloud Foundry's Cloud Controller validates
// every plan schema against the JSON Schema draft-04 metaschema and refuses
// any other "$schema" ("Custom meta schemas are not supported").
const Draft04 = "http://json-schema.org/draft-04/schema#"

// decodeFile turns catalog YAML or JSON into the catalog, decoding strictly:
// duplicate keys and unknown fields are errors. Every problem found is
// reported, each prefixed with the service and plan it belongs to.
func decodeFile(data []byte) (*Catalog, error) {
	js, err := yaml.YAMLToJSONStrict(data)
	if err != nil {
		return nil, fmt.Errorf("decode catalog: %s", oneLine(err.Error()))
	}
	var f fileCatalog
	if err := decodeStrict(js, &f); err != nil {
		return nil, fmt.Errorf("decode catalog: %s", jsonProblem(err))
	}
	var p problems
	c := &Catalog{}
	for i, rawService := range f.Services {
		where := label("service", "services", i, rawService)
		var fs fileService
		if err := decodeStrict(rawService, &fs); err != nil {
			p.add(where, "%s", jsonProblem(err))
			continue
		}
		s := fs.service()
		for j, rawPlan := range fs.Plans {
			where := where + ": " + label("plan", "plans", j, rawPlan)
			var fp filePlan
			if err := decodeStrict(rawPlan, &fp); err != nil {
				p.add(where, "%s", jsonProblem(err))
				continue
			}
			plan, ok := fp.plan(where, &p)
			if ok {
				s.Plans = append(s.Plans, plan)
			}
		}
		c.Services = append(c.Services, s)
	}
	if err := p.err(); err != nil {
		return nil, err
	}
	return c, nil
}

func (fs fileService) service() Service {
	return Service{
		ID:                   fs.ID,
		Name:                 fs.Name,
		Description:          fs.Description,
		Tags:                 fs.Tags,
		Bindable:             fs.Bindable,
		PlanUpdateable:       fs.PlanUpdateable,
		InstancesRetrievable: fs.InstancesRetrievable,
		BindingsRetrievable:  fs.BindingsRetrievable,
		Metadata: ServiceMetadata{
			DisplayName:         fs.Metadata.DisplayName,
			ImageURL:            fs.Metadata.ImageURL,
			LongDescription:     fs.Metadata.LongDescription,
			ProviderDisplayName: fs.Metadata.ProviderDisplayName,
			DocumentationURL:    fs.Metadata.DocumentationURL,
			SupportURL:          fs.Metadata.SupportURL,
		},
		MaintenanceInfo: MaintenanceInfo{
			Version:     fs.MaintenanceInfo.Version,
			Description: fs.MaintenanceInfo.Description,
		},
	}
}

// plan converts fp, reporting schema documents that cannot be decoded to p.
func (fp filePlan) plan(where string, p *problems) (Plan, bool) {
	plan := Plan{
		ID:             fp.ID,
		Name:           fp.Name,
		Description:    fp.Description,
		Tier:           Tier(fp.Tier),
		Free:           fp.Free,
		MemoryMiB:      fp.MemoryMiB,
		CPUMHz:         fp.CPUMHz,
		DiskMiB:        fp.DiskMiB,
		Nodes:          fp.Nodes,
		Gateways:       fp.Gateways,
		MaxConnections: fp.MaxConnections,
		AutovacuumNaptime: func() time.Duration {
			if fp.AutovacuumNaptimeS == 0 {
				return DefaultAutovacuumNaptime
			}
			return time.Duration(fp.AutovacuumNaptimeS) * time.Second
		}(),
		Backups: BackupPolicy{
			Daily:       fp.Backups.Daily,
			DailyKept:   fp.Backups.DailyKept,
			WeeklyKept:  fp.Backups.WeeklyKept,
			MonthlyKept: fp.Backups.MonthlyKept,
			ManualKept:  fp.Backups.ManualKept,
			PITRDays:    fp.Backups.PITRDays,
		},
		Metadata: PlanMetadata{
			DisplayName: fp.Metadata.DisplayName,
			Bullets:     fp.Metadata.Bullets,
		},
	}
	for _, fc := range fp.Metadata.Costs {
		plan.Metadata.Costs = append(plan.Metadata.Costs, Cost(fc))
	}
	ok := true
	for _, s := range []struct {
		field string
		raw   json.RawMessage
		dst   *map[string]any
	}{
		{"schemas.provision", fp.Schemas.Provision, &plan.Schemas.Provision},
		{"schemas.update", fp.Schemas.Update, &plan.Schemas.Update},
		{"schemas.bind", fp.Schemas.Bind, &plan.Schemas.Bind},
	} {
		doc, err := decodeSchema(s.raw)
		if err != nil {
			p.add(where, "%s %s", s.field, err)
			ok = false
			continue
		}
		*s.dst = doc
	}
	return plan, ok
}

// decodeSchema decodes one schema document with exact numbers and gives it
// the draft-04 "$schema" when it names no draft; any other "$schema" is an error.
func decodeSchema(raw json.RawMessage) (map[string]any, error) {
	if len(raw) == 0 || string(raw) == "null" {
		return nil, errors.New("is missing: give a JSON Schema object")
	}
	if len(raw) > maxSchemaBytes {
		return nil, fmt.Errorf("is %d bytes, over the OSB limit of %d", len(raw), maxSchemaBytes)
	}
	v, err := jsonschema.UnmarshalJSON(bytes.NewReader(raw))
	if err != nil {
		return nil, fmt.Errorf("is not valid JSON: %s", oneLine(err.Error()))
	}
	doc, ok := v.(map[string]any)
	if !ok {
		return nil, fmt.Errorf("must be a JSON Schema object, got %s", jsonType(v))
	}
	switch v, ok := doc["$schema"]; {
	case !ok:
		doc["$schema"] = Draft04
	case v != Draft04:
		return nil, fmt.Errorf("$schema %s is not %q: Cloud Foundry accepts JSON Schema draft-04 only (\"Custom meta schemas are not supported\")",
			quoteJSON(v), Draft04)
	}
	return doc, nil
}

// quoteJSON renders a decoded JSON value for a message.
func quoteJSON(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Sprintf("%v", v)
	}
	return string(b)
}

func decodeStrict(data []byte, v any) error {
	d := json.NewDecoder(bytes.NewReader(data))
	d.DisallowUnknownFields()
	d.UseNumber()
	return d.Decode(v)
}

// label names the i-th element of a list for an error message: by its id
// when it has one (`plan "postgresql-sandbox"`), else by position (`plans[3]`).
func label(kind, list string, i int, raw json.RawMessage) string {
	var peek struct {
		ID any `json:"id"`
	}
	if json.Unmarshal(raw, &peek) == nil {
		if id, ok := peek.ID.(string); ok && id != "" {
			return fmt.Sprintf("%s %q", kind, id)
		}
	}
	return fmt.Sprintf("%s[%d]", list, i)
}

// jsonProblem rewrites an encoding/json error as a phrase naming the
// catalog field, without Go type names.
func jsonProblem(err error) string {
	var te *json.UnmarshalTypeError
	if errors.As(err, &te) {
		field := te.Field
		if field == "" {
			field = "value"
		}
		return fmt.Sprintf("%s: got JSON %s, want %s", field, te.Value, kindOf(te.Type.Kind().String()))
	}
	return oneLine(strings.TrimPrefix(err.Error(), "json: "))
}

// kindOf names a Go kind the way a catalog author thinks of it.
func kindOf(k string) string {
	switch {
	case strings.HasPrefix(k, "int"), strings.HasPrefix(k, "uint"):
		return "an integer"
	case strings.HasPrefix(k, "float"):
		return "a number"
	case k == "bool":
		return "true or false"
	case k == "string":
		return "a string"
	case k == "slice":
		return "a list"
	case k == "struct", k == "map":
		return "a mapping"
	}
	return k
}

// jsonType names the JSON type of a decoded value.
func jsonType(v any) string {
	switch v.(type) {
	case nil:
		return "null"
	case bool:
		return "boolean"
	case string:
		return "string"
	case json.Number, float64:
		return "number"
	case []any:
		return "array"
	case map[string]any:
		return "object"
	}
	return fmt.Sprintf("%T", v)
}

func oneLine(s string) string {
	return strings.Join(strings.Fields(s), " ")
}

// problems collects what is wrong with a catalog, each with where it is.
type problems struct {
	list []string
}

func (p *problems) add(where, format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	if where != "" {
		msg = where + ": " + msg
	}
	p.list = append(p.list, msg)
}

func (p *problems) err() error {
	if len(p.list) == 0 {
		return nil
	}
	return fmt.Errorf("invalid catalog: %s", strings.Join(p.list, "; "))
}
