package catalog

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"
)

func TestBrokerServicesRoundTripsCatalog(t *testing.T) {
	c, err := Default()
	if err != nil {
		t.Fatalf("Default: %v", err)
	}
	services := c.BrokerServices()
	if len(services) != len(c.Services) {
		t.Fatalf("services = %d, want %d", len(services), len(c.Services))
	}
	for i, ds := range services {
		s := c.Services[i]
		if ds.ID != s.ID || ds.Name != s.Name || ds.Description != s.Description {
			t.Errorf("service = %q %q %q, want %q %q %q", ds.ID, ds.Name, ds.Description, s.ID, s.Name, s.Description)
		}
		if !ds.Bindable || !ds.PlanUpdatable || !ds.InstancesRetrievable || !ds.BindingsRetrievable {
			t.Errorf("service flags = %+v, want bindable, plan updatable, instances and bindings retrievable", ds)
		}
		if !reflect.DeepEqual(ds.Tags, s.Tags) || ds.Metadata == nil || ds.Metadata.DisplayName != s.Metadata.DisplayName {
			t.Errorf("tags %v, metadata %+v; want %v, %+v", ds.Tags, ds.Metadata, s.Tags, s.Metadata)
		}
		if len(ds.Plans) != len(s.Plans) {
			t.Fatalf("plans = %d, want %d", len(ds.Plans), len(s.Plans))
		}
		for j, dp := range ds.Plans {
			p := s.Plans[j]
			if dp.ID != p.ID || dp.Name != p.Name || dp.Description != p.Description {
				t.Errorf("plan = %q %q, want %q %q", dp.ID, dp.Name, p.ID, p.Name)
			}
			if dp.Free == nil || *dp.Free != p.Free {
				t.Errorf("%s: free = %v, want %v", p.ID, dp.Free, p.Free)
			}
			if dp.Bindable == nil || !*dp.Bindable {
				t.Errorf("%s: bindable = %v, want true", p.ID, dp.Bindable)
			}
			if mi := dp.MaintenanceInfo; mi == nil || mi.Version != "15.18.0" || mi.Description != "PostgreSQL 15.18" {
				t.Errorf("%s: maintenance info = %+v, want 15.18.0, PostgreSQL 15.18", p.ID, mi)
			}
			md := dp.Metadata
			if md == nil || md.DisplayName != p.Metadata.DisplayName || !reflect.DeepEqual(md.Bullets, p.Metadata.Bullets) || len(md.Costs) != len(p.Metadata.Costs) {
				t.Errorf("%s: metadata = %+v, want %+v", p.ID, md, p.Metadata)
			}
			for k, cost := range md.Costs {
				if cost.Unit != p.Metadata.Costs[k].Unit || !reflect.DeepEqual(cost.Amount, p.Metadata.Costs[k].Amount) {
					t.Errorf("%s: cost = %+v, want %+v", p.ID, cost, p.Metadata.Costs[k])
				}
			}
			if dp.Schemas == nil {
				t.Fatalf("%s: no schemas", p.ID)
			}
			for _, sc := range []struct {
				name      string
				got, want map[string]any
			}{
				{"service_instance.create", dp.Schemas.Instance.Create.Parameters, p.Schemas.Provision},
				{"service_instance.update", dp.Schemas.Instance.Update.Parameters, p.Schemas.Update},
				{"service_binding.create", dp.Schemas.Binding.Create.Parameters, p.Schemas.Bind},
			} {
				if sc.want == nil || !reflect.DeepEqual(sc.got, sc.want) {
					t.Errorf("%s: %s schema = %v, want %v", p.ID, sc.name, sc.got, sc.want)
				}
			}
		}
	}
}

func TestBrokerServicesIsACopy(t *testing.T) {
	c, err := Default()
	if err != nil {
		t.Fatalf("Default: %v", err)
	}
	services := c.BrokerServices()
	services[0].Plans[0].Schemas.Binding.Create.Parameters["properties"].(map[string]any)["read_only"] = "changed"
	services[0].Tags[0] = "changed"
	if c.Services[0].Tags[0] != "postgresql" {
		t.Error("changing BrokerServices tags changed the catalog")
	}
	props := c.Services[0].Plans[0].Schemas.Bind["properties"].(map[string]any)
	if _, ok := props["read_only"].(map[string]any); !ok {
		t.Error("changing a BrokerServices schema changed the catalog")
	}
}

// TestBrokerServicesJSON checks the wire shape of GET /v2/catalog (OSB
// v2.17 "Catalog Management").
func TestBrokerServicesJSON(t *testing.T) {
	c, err := Default()
	if err != nil {
		t.Fatalf("Default: %v", err)
	}
	b, err := json.Marshal(c.BrokerServices())
	if err != nil {
		t.Fatalf("marshal: %v", err)
	}
	for _, want := range []string{
		`"id":"postgresql"`, `"plan_updateable":true`, `"instances_retrievable":true`, `"bindings_retrievable":true`,
		`"id":"postgresql-sandbox"`, `"free":true`, `"maintenance_info":{"version":"15.18.0","description":"PostgreSQL 15.18"}`,
		`"service_instance":{"create":{"parameters":{`, `"service_binding":{"create":{"parameters":{`,
		`"$schema":"http://json-schema.org/draft-04/schema#"`, `"displayName":"Starter 512 MiB"`,
		`"costs":[{"amount":{"eur":10},"unit":"MONTHLY"}]`,
	} {
		if !strings.Contains(string(b), want) {
			t.Errorf("catalog JSON does not contain %s", want)
		}
	}
}
