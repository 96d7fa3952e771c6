package operation

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/pgbroker/pgbroker/catalog"
)

func TestPayloadsRoundTripAsTheWorkerReadsThem(t *testing.T) {
	tls, exts := true, []string{"pgcrypto"}
	u, err := Decode[Update](Encode(Update{ForceTLS: &tls, Extensions: &exts}))
	if err != nil || u.ForceTLS == nil || !*u.ForceTLS || u.Extensions == nil || (*u.Extensions)[0] != "pgcrypto" {
		t.Fatalf("update round trip: %+v, %v", u, err)
	}
	at := time.Date(2026, 12, 7, 3, 4, 5, 123456789, time.UTC)
	p, err := Decode[PITR](Encode(PITR{TargetTime: at}))
	if err != nil || !p.TargetTime.Equal(at) {
		t.Fatalf("PITR round trip: %+v, %v", p, err)
	}
	if r, err := Decode[Restore](json.RawMessage(`{"backup_id":"b1"}`)); err != nil || r.BackupID != "b1" {
		t.Fatalf("restore: %+v, %v", r, err)
	}
	// A provision's payload is its whole validated parameters; the worker
	// reads restore_from and ignores the rest.
	pr, err := Decode[Provision](json.RawMessage(`{"backup_time":"03:00","restore_from":{"instance_id":"i","point_in_time":"2026-12-07T03:04:05.1234567+01:00"}}`))
	if err != nil || pr.RestoreFrom == nil || pr.RestoreFrom.InstanceID != "i" {
		t.Fatalf("provision: %+v, %v", pr, err)
	}
	got, err := pr.RestoreFrom.At()
	if want := time.Date(2026, 12, 7, 2, 4, 5, 123456000, time.UTC); err != nil || !got.Equal(want) || got.Location() != time.UTC {
		t.Fatalf("At() = %v, %v; want %v", got, err, want)
	}
}

func TestDecodeNamesThePayloadItCouldNotRead(t *testing.T) {
	if _, err := Decode[Restore](json.RawMessage(`{"backup_id":7}`)); err == nil || err.Error()[:28] != "read operation.Restore paylo" {
		t.Fatalf("err = %v", err)
	}
	if u, err := Decode[Update](nil); err != nil || u.ForceTLS != nil || u.Extensions != nil {
		t.Fatalf("empty payload: %+v, %v", u, err)
	}
	if _, err := (RestoreFrom{PointInTime: "yesterday"}).At(); err == nil {
		t.Fatal("At accepted a time that is not RFC 3339")
	}
}

// Every parameter a plan's provision or update schema admits has its field
// in the payload, so FromParameters never meets one it cannot hold.
func TestPayloadsHoldEveryParameterTheCatalogAdmits(t *testing.T) {
	cat, err := catalog.Default()
	if err != nil {
		t.Fatal(err)
	}
	fields := func(v any) map[string]bool {
		out := map[string]bool{}
		for f := range reflect.TypeOf(v).Fields() {
			out[strings.Split(f.Tag.Get("json"), ",")[0]] = true
		}
		return out
	}
	checked := 0
	for _, svc := range cat.Services {
		for _, plan := range svc.Plans {
			for kind, schema := range map[string]map[string]any{"provision": plan.Schemas.Provision, "update": plan.Schemas.Update} {
				want := fields(Provision{})
				if kind == "update" {
					want = fields(Update{})
				}
				props, _ := schema["properties"].(map[string]any)
				if schema["additionalProperties"] != false {
					t.Errorf("plan %s %s schema is open: a payload cannot hold what it admits", plan.ID, kind)
				}
				for name := range props {
					checked++
					if !want[name] {
						t.Errorf("plan %s admits %s parameter %q, which operation.%s has no field for", plan.ID, kind, name, map[string]string{"provision": "Provision", "update": "Update"}[kind])
					}
				}
			}
		}
	}
	if checked < 10 {
		t.Fatalf("checked %d parameters: the schemas were not read", checked)
	}
}

func TestFromParametersRefusesAParameterThePayloadCannotHold(t *testing.T) {
	if _, err := FromParameters[Update](map[string]any{"shoe_size": 42}); err == nil {
		t.Fatal("an unknown parameter was dropped silently")
	}
	tls := true
	u, err := FromParameters[Update](map[string]any{"force_tls": true, "extensions": []any{}})
	if err != nil || u.ForceTLS == nil || *u.ForceTLS != tls || u.Extensions == nil || len(*u.Extensions) != 0 {
		t.Fatalf("update %+v, %v", u, err)
	}
	if got := string(Encode(u)); got != `{"extensions":[],"force_tls":true}` {
		t.Fatalf("encoded %s: an empty extension list must stay (it drops every extension)", got)
	}
}
