package catalog

import (
	"errors"
	"strings"
	"testing"
)

func TestCheckPlanChange(t *testing.T) {
	c, err := Default()
	if err != nil {
		t.Fatalf("Default: %v", err)
	}
	tests := []struct {
		from, to string
		allowed  bool
	}{
		{"postgresql-sandbox", "postgresql-sandbox", true},
		{"postgresql-sandbox", "postgresql-starter-512", true},
		{"postgresql-starter-512", "postgresql-starter-8192", true},
		{"postgresql-starter-8192", "postgresql-starter-512", true},
		{"postgresql-starter-1024", "postgresql-sandbox", true},
		{"postgresql-business-1024", "postgresql-business-1024", true},
		{"postgresql-starter-1024", "postgresql-business-1024", false},
		{"postgresql-sandbox", "postgresql-business-512", false},
		{"postgresql-business-1024", "postgresql-starter-1024", false},
		{"postgresql-business-1024", "postgresql-business-2048", false},
	}
	for _, tt := range tests {
		t.Run(tt.from+" to "+tt.to, func(t *testing.T) {
			_, from, ok1 := c.Plan(tt.from)
			_, to, ok2 := c.Plan(tt.to)
			if !ok1 || !ok2 {
				t.Fatalf("plans %q, %q not in the default catalog", tt.from, tt.to)
			}
			err := CheckPlanChange(from, to)
			if tt.allowed {
				if err != nil {
					t.Errorf("CheckPlanChange = %v, want allowed", err)
				}
				return
			}
			var pce *PlanChangeError
			if !errors.As(err, &pce) {
				t.Fatalf("CheckPlanChange = %#v, want *PlanChangeError", err)
			}
			for _, want := range []string{tt.from, tt.to, "highly available (Business) plans are not available yet"} {
				if !strings.Contains(pce.Error(), want) {
					t.Errorf("message %q does not contain %q", pce.Msg, want)
				}
			}
		})
	}
}
