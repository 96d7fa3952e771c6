package catalog

import (
	"reflect"
	"testing"
	"time"
)

func TestDefaultParses(t *testing.T) {
	c, err := Default()
	if err != nil {
		t.Fatalf("Default: %v", err)
	}
	if len(c.Services) != 1 {
		t.Fatalf("services = %d, want 1", len(c.Services))
	}
	s := c.Services[0]
	if s.ID != "postgresql" || s.Name != "postgresql" {
		t.Errorf("service id, name = %q, %q; want postgresql, postgresql", s.ID, s.Name)
	}
	if !s.Bindable || !s.PlanUpdateable || !s.InstancesRetrievable || !s.BindingsRetrievable {
		t.Errorf("service flags = bindable %v, plan_updateable %v, instances_retrievable %v, bindings_retrievable %v; want all true",
			s.Bindable, s.PlanUpdateable, s.InstancesRetrievable, s.BindingsRetrievable)
	}
	if want := []string{"postgresql", "relational", "sql"}; !reflect.DeepEqual(s.Tags, want) {
		t.Errorf("tags = %v, want %v", s.Tags, want)
	}
	if want := (MaintenanceInfo{Version: "15.18.0", Description: "PostgreSQL 15.18"}); s.MaintenanceInfo != want {
		t.Errorf("maintenance info = %+v, want %+v", s.MaintenanceInfo, want)
	}
}

// TestDefaultPlansMatchDesign asserts the plan table of DESIGN.md "Catalog
// (default)" and "Backups".
func TestDefaultPlansMatchDesign(t *testing.T) {
	none := BackupPolicy{}
	starter := BackupPolicy{Daily: true, DailyKept: 7, WeeklyKept: 4, MonthlyKept: 0, ManualKept: 10, PITRDays: 7}
	business := BackupPolicy{Daily: true, DailyKept: 7, WeeklyKept: 8, MonthlyKept: 12, ManualKept: 50, PITRDays: 7}
	const gib = 1024
	tests := []struct {
		id                        string
		tier                      Tier
		free                      bool
		memory, cpu, disk         int
		nodes, gateways, maxConns int
		backups                   BackupPolicy
		displayName               string
	}{
		{"postgresql-sandbox", TierSandbox, true, 256, 250, 1 * gib, 1, 1, 10, none, "Sandbox"},
		{"postgresql-starter-512", TierStarter, false, 512, 500, 10 * gib, 1, 1, 60, starter, "Starter 512 MiB"},
		{"postgresql-starter-1024", TierStarter, false, 1024, 1000, 20 * gib, 1, 1, 120, starter, "Starter 1024 MiB"},
		{"postgresql-starter-2048", TierStarter, false, 2048, 2000, 40 * gib, 1, 1, 200, starter, "Starter 2048 MiB"},
		{"postgresql-starter-4096", TierStarter, false, 4096, 3000, 80 * gib, 1, 1, 300, starter, "Starter 4096 MiB"},
		{"postgresql-starter-8192", TierStarter, false, 8192, 4000, 160 * gib, 1, 1, 400, starter, "Starter 8192 MiB"},
		{"postgresql-business-512", TierBusiness, false, 512, 500, 10 * gib, 2, 2, 60, business, "Business 512 MiB"},
		{"postgresql-business-1024", TierBusiness, false, 1024, 1000, 20 * gib, 2, 2, 120, business, "Business 1024 MiB"},
		{"postgresql-business-2048", TierBusiness, false, 2048, 2000, 40 * gib, 2, 2, 200, business, "Business 2048 MiB"},
		{"postgresql-business-4096", TierBusiness, false, 4096, 3000, 80 * gib, 2, 2, 300, business, "Business 4096 MiB"},
		{"postgresql-business-8192", TierBusiness, false, 8192, 4000, 160 * gib, 2, 2, 400, business, "Business 8192 MiB"},
	}
	c, err := Default()
	if err != nil {
		t.Fatalf("Default: %v", err)
	}
	var ids []string
	for _, p := range c.Services[0].Plans {
		ids = append(ids, p.ID)
	}
	var wantIDs []string
	for _, tt := range tests {
		wantIDs = append(wantIDs, tt.id)
	}
	if !reflect.DeepEqual(ids, wantIDs) {
		t.Fatalf("plan ids = %v, want %v", ids, wantIDs)
	}
	for _, tt := range tests {
		t.Run(tt.id, func(t *testing.T) {
			s, p, ok := c.Plan(tt.id)
			if !ok {
				t.Fatalf("Plan(%q) not found", tt.id)
			}
			if s.ID != "postgresql" {
				t.Errorf("service = %q, want postgresql", s.ID)
			}
			got := []any{p.Name, p.Tier, p.Free, p.MemoryMiB, p.CPUMHz, p.DiskMiB, p.Nodes, p.Gateways, p.MaxConnections, p.Backups, p.Metadata.DisplayName}
			want := []any{tt.id, tt.tier, tt.free, tt.memory, tt.cpu, tt.disk, tt.nodes, tt.gateways, tt.maxConns, tt.backups, tt.displayName}
			names := []string{"name", "tier", "free", "memory_mib", "cpu_mhz", "disk_mib", "nodes", "gateways", "max_connections", "backups", "display name"}
			for i := range got {
				if !reflect.DeepEqual(got[i], want[i]) {
					t.Errorf("%s = %v, want %v", names[i], got[i], want[i])
				}
			}
			if p.Description == "" || len(p.Metadata.Bullets) != 4 {
				t.Errorf("description %q, %d bullets; want a description and 4 bullets (memory, disk, nodes, backups)", p.Description, len(p.Metadata.Bullets))
			}
			if tt.free != (len(p.Metadata.Costs) == 0) {
				t.Errorf("costs = %+v; want none on a free plan, a monthly EUR cost otherwise", p.Metadata.Costs)
			}
			for _, cost := range p.Metadata.Costs {
				if cost.Unit != "MONTHLY" || cost.Amount["eur"] <= 0 {
					t.Errorf("cost = %+v, want a positive MONTHLY amount in eur", cost)
				}
			}
		})
	}
}

func TestDefaultDiskIs20GiBPerGiBOfMemoryAtLeast10GiB(t *testing.T) {
	c, err := Default()
	if err != nil {
		t.Fatalf("Default: %v", err)
	}
	for _, p := range c.Services[0].Plans {
		if p.Tier == TierSandbox {
			continue
		}
		if want := max(10*1024, 20*p.MemoryMiB); p.DiskMiB != want {
			t.Errorf("%s: disk_mib = %d, want %d", p.ID, p.DiskMiB, want)
		}
	}
}

func TestDefaultSchemas(t *testing.T) {
	c, err := Default()
	if err != nil {
		t.Fatalf("Default: %v", err)
	}
	for _, p := range c.Services[0].Plans {
		provision := map[string]string{"extensions": "array"}
		update := map[string]string{"extensions": "array", "force_tls": "boolean", "postgresql_version": "string"}
		if p.Tier != TierSandbox { // paid plans: daily backups and restore_from
			for _, m := range []map[string]string{provision, update} {
				m["backup_time"], m["backup_time_zone"] = "string", "string"
			}
			provision["restore_from"] = "object"
		}
		checkObjectSchema(t, p.ID+" provision", p.Schemas.Provision, provision)
		checkObjectSchema(t, p.ID+" update", p.Schemas.Update, update)
	}
}

func TestPlanUnknownIDNotFound(t *testing.T) {
	c, err := Default()
	if err != nil {
		t.Fatalf("Default: %v", err)
	}
	if _, _, ok := c.Plan("postgresql-starter-256"); ok {
		t.Error("Plan(postgresql-starter-256) found, want not found")
	}
}

// checkObjectSchema: an object schema refusing unknown keys, with exactly
// the properties named, of the types given.
func checkObjectSchema(t *testing.T, name string, schema map[string]any, want map[string]string) {
	t.Helper()
	if schema["type"] != "object" || schema["additionalProperties"] != false {
		t.Errorf("%s: schema %v is not an object refusing unknown keys", name, schema)
	}
	props, _ := schema["properties"].(map[string]any)
	if len(props) != len(want) {
		t.Errorf("%s: properties %v, want %v", name, props, want)
	}
	for key, typ := range want {
		p, _ := props[key].(map[string]any)
		if p["type"] != typ {
			t.Errorf("%s: %s has type %v, want %s", name, key, p["type"], typ)
		}
	}
}

// TestDefaultAutovacuumNaptime: the Sandbox plan's autovacuum visits each
// database every 5 min (issue 18: an idle Sandbox costs almost nothing);
// every other plan keeps PostgreSQL's 1 min.
func TestDefaultAutovacuumNaptime(t *testing.T) {
	c, err := Default()
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range c.Services[0].Plans {
		want := DefaultAutovacuumNaptime
		if p.Tier == TierSandbox {
			want = 5 * time.Minute
		}
		if p.AutovacuumNaptime != want {
			t.Errorf("plan %s: autovacuum naptime %v, want %v", p.ID, p.AutovacuumNaptime, want)
		}
	}
}
