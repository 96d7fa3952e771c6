package catalog

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// overrideYAML is a small operator catalog: one service, two plans, a
// nested provision schema.
const overrideYAML = `
services:
  - id: pg-custom
    name: pg-custom
    description: Custom PostgreSQL offer.
    bindable: true
    plan_updateable: false
    maintenance_info: {version: "16.4.0", description: PostgreSQL 16.4}
    plans:
      - id: custom-small
        name: small
        description: Small.
        tier: starter
        memory_mib: 1024
        cpu_mhz: 1000
        disk_mib: 20480
        nodes: 1
        gateways: 1
        max_connections: 100
        backups: {daily: true, daily_kept: 3, weekly_kept: 1, monthly_kept: 0, manual_kept: 5, pitr_days: 0}
        metadata:
          display_name: Small
          costs: [{unit: MONTHLY, amount: {eur: 12.5}}]
        schemas: &schemas
          provision:
            type: object
            additionalProperties: false
            properties:
              restore_from:
                type: object
                additionalProperties: false
                required: [backup_id]
                properties:
                  backup_id: {type: string, pattern: "^bk-[0-9a-f]{8}$"}
              locale: {enum: [en_US.UTF-8, fr_FR.UTF-8]}
          update: {type: object, additionalProperties: false}
          bind: {type: object, additionalProperties: false, properties: {read_only: {type: boolean}}}
      - id: custom-large
        name: large
        description: Large.
        tier: business
        memory_mib: 4096
        cpu_mhz: 3000
        disk_mib: 81920
        nodes: 2
        gateways: 2
        max_connections: 300
        schemas: *schemas
`

func writeFile(t *testing.T, content string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "catalog.yaml")
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestLoadEmptyPathGivesDefault(t *testing.T) {
	c, err := Load("")
	if err != nil {
		t.Fatalf("Load(\"\"): %v", err)
	}
	if _, _, ok := c.Plan("postgresql-sandbox"); !ok {
		t.Error("Load(\"\") has no postgresql-sandbox plan; want the default catalog")
	}
}

func TestLoadOverrideFileReplacesDefault(t *testing.T) {
	c, err := Load(writeFile(t, overrideYAML))
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	if _, _, ok := c.Plan("postgresql-sandbox"); ok {
		t.Error("override catalog still has postgresql-sandbox; want the file to replace the default")
	}
	s, p, ok := c.Plan("custom-large")
	if !ok {
		t.Fatal("Plan(custom-large) not found")
	}
	if s.ID != "pg-custom" || s.PlanUpdateable || s.MaintenanceInfo.Version != "16.4.0" {
		t.Errorf("service = %+v, want pg-custom, not plan updateable, version 16.4.0", s)
	}
	if p.Name != "large" || p.Tier != TierBusiness || p.Nodes != 2 || p.DiskMiB != 81920 {
		t.Errorf("plan = %+v, want large, business, 2 nodes, 81920 MiB disk", p)
	}
	if p.Backups != (BackupPolicy{}) {
		t.Errorf("backups = %+v, want none (absent in file)", p.Backups)
	}
	_, small, _ := c.Plan("custom-small")
	if got := small.Metadata.Costs; len(got) != 1 || got[0].Amount["eur"] != 12.5 {
		t.Errorf("costs = %+v, want 12.5 eur", got)
	}
}

func TestParseAcceptsJSON(t *testing.T) {
	const doc = `{"services": [{"id": "s", "name": "s", "description": "d",
		"maintenance_info": {"version": "1.0.0"},
		"plans": [{"id": "p", "name": "p", "description": "d", "tier": "sandbox", "free": true,
			"memory_mib": 256, "cpu_mhz": 250, "disk_mib": 1024, "nodes": 1, "gateways": 1, "max_connections": 10,
			"schemas": {"provision": {"type": "object"}, "update": {"type": "object"}, "bind": {"type": "object"}}}]}]}`
	c, err := Parse([]byte(doc))
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	if _, p, ok := c.Plan("p"); !ok || !p.Free {
		t.Errorf("Plan(p) = %+v, %v; want a free plan", p, ok)
	}
}

func TestLoadMissingFileFails(t *testing.T) {
	_, err := Load(filepath.Join(t.TempDir(), "absent.yaml"))
	if err == nil || !strings.Contains(err.Error(), "absent.yaml") {
		t.Errorf("Load(absent) error = %v, want one naming the file", err)
	}
}

func TestLoadBrokenFileNamesPlanAndField(t *testing.T) {
	tests := []struct {
		name    string
		old     string // replaced in overrideYAML...
		new     string // ...by this
		wantAll []string
	}{
		{"duplicate plan id", "- id: custom-large", "- id: custom-small",
			[]string{`plan "custom-small"`, `id "custom-small" is used by another plan`}},
		{"duplicate plan name", "name: large", "name: small",
			[]string{`plan "custom-large"`, `name "small" is used by another plan`}},
		{"negative memory", "memory_mib: 4096", "memory_mib: -4096",
			[]string{`plan "custom-large"`, "memory_mib", "-4096"}},
		{"zero nodes", "nodes: 2", "nodes: 0",
			[]string{`plan "custom-large"`, "nodes must be greater than 0"}},
		{"autovacuum naptime over an hour", "max_connections: 300", "max_connections: 300\n        autovacuum_naptime_s: 3601",
			[]string{`plan "custom-large"`, "autovacuum_naptime_s must be from 1 to 3600, got 3601"}},
		{"negative autovacuum naptime", "max_connections: 300", "max_connections: 300\n        autovacuum_naptime_s: -1",
			[]string{`plan "custom-large"`, "autovacuum_naptime_s", "got -1"}},
		{"unknown plan field", "max_connections: 300", "max_connections: 300\n        memroy_mib: 1",
			[]string{`service "pg-custom"`, `plan "custom-large"`, `unknown field "memroy_mib"`}},
		{"unknown service field", "plan_updateable: false", "plan_updateable: false\n    dashboard: true",
			[]string{`service "pg-custom"`, `unknown field "dashboard"`}},
		{"unknown top-level field", "services:", "version: 2\nservices:",
			[]string{`unknown field "version"`}},
		{"string for a number", "cpu_mhz: 3000", "cpu_mhz: lots",
			[]string{`plan "custom-large"`, "cpu_mhz", "want an integer"}},
		{"unknown tier", "tier: business", "tier: enterprise",
			[]string{`plan "custom-large"`, `tier "enterprise"`}},
		{"version not semver", `version: "16.4.0"`, `version: "16.4"`,
			[]string{`service "pg-custom"`, "maintenance_info.version", `"16.4"`}},
		{"empty plan id", "- id: custom-large", "- id: ''",
			[]string{`plans[1]`, "id is required"}},
		{"schema does not compile", "type: string, pattern", "type: strin, pattern",
			[]string{`plan "custom-small"`, "schemas.provision does not compile"}},
		{"schema not an object", "update: {type: object, additionalProperties: false}", "update: [1]",
			[]string{`plan "custom-small"`, "schemas.update must be a JSON Schema object"}},
		{"schema missing", "          update: {type: object, additionalProperties: false}\n", "",
			[]string{`plan "custom-small"`, "schemas.update is missing"}},
		{"external reference", "locale: {enum:", "locale: {$ref: 'https://example.com/x.json', enum:",
			[]string{`plan "custom-small"`, "schemas.provision does not compile"}},
		{"duplicate key", "memory_mib: 4096", "memory_mib: 4096\n        memory_mib: 8192",
			[]string{"memory_mib"}},
		{"free plan with a price", "tier: starter", "tier: starter\n        free: true",
			[]string{`plan "custom-small"`, "metadata.costs[0].amount.eur is 12.5 but the plan is free"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			content := strings.Replace(overrideYAML, tt.old, tt.new, 1)
			if content == overrideYAML {
				t.Fatalf("test bug: %q not found in overrideYAML", tt.old)
			}
			path := writeFile(t, content)
			c, err := Load(path)
			if err == nil {
				t.Fatalf("Load succeeded with %d services, want an error", len(c.Services))
			}
			msg := err.Error()
			t.Log(msg)
			for _, want := range append(tt.wantAll, path) {
				if !strings.Contains(msg, want) {
					t.Errorf("error %q does not contain %q", msg, want)
				}
			}
			if strings.Contains(msg, "\n") {
				t.Errorf("error %q spans several lines, want one", msg)
			}
		})
	}
}

func TestParseReportsEveryProblem(t *testing.T) {
	content := strings.Replace(overrideYAML, "memory_mib: 4096", "memory_mib: -1", 1)
	content = strings.Replace(content, "gateways: 1", "gateways: 0", 1)
	_, err := Parse([]byte(content))
	if err == nil {
		t.Fatal("Parse succeeded, want an error")
	}
	for _, want := range []string{`plan "custom-large": memory_mib`, `plan "custom-small": gateways`} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not contain %q", err, want)
		}
	}
}
