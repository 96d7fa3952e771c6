package naming

import (
	"regexp"
	"testing"
)

func TestNamesAreStableAndSafe(t *testing.T) {
	hex12 := regexp.MustCompile(`^[0-9a-f]{12}$`)
	id := "2b8e3c1a-9f0d-4c6e-8a7b-1d2e3f4a5b6c"
	if ShortID(id) != ShortID(id) || ShortID(id) == ShortID(id+"x") || !hex12.MatchString(ShortID(id)) {
		t.Fatalf("ShortID %q: not a stable, distinct 12-hex digest", ShortID(id))
	}
	if r := BindingRole("../weird binding id; DROP TABLE"); !regexp.MustCompile(`^u_[0-9a-f]{12}$`).MatchString(r) {
		t.Fatalf("BindingRole gave %q", r)
	}
	short := ShortID(id)
	if Database(short) != "db_"+short || ReaderRole(short) != "db_"+short+"_ro" {
		t.Fatalf("Database %q, ReaderRole %q", Database(short), ReaderRole(short))
	}
	if k := DumpKey(short, "b1"); k != short+"/b1.dump" {
		t.Fatalf("DumpKey gave %q", k)
	}
}
