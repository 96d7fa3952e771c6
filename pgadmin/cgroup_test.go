package pgadmin

import "testing"

func TestTheAllocationIsReadFromTheControlGroupPath(t *testing.T) {
	for path, want := range map[string]string{
		"/nomad/57aa0aac-6217-23c9-296c-6b01a14a5b14.postgres":                         "57aa0aac-6217-23c9-296c-6b01a14a5b14",
		"/nomad.slice/share.slice/57aa0aac-6217-23c9-296c-6b01a14a5b14.postgres.scope": "57aa0aac-6217-23c9-296c-6b01a14a5b14",
		"/process_api/84f396a44a543f84c336953c6c24ffb6":                                "",
		"/": "",
		"/nomad/57aa0aac-6217-23c9-296c-6b01a14a5b14.postgres/child": "",
	} {
		if got := allocOf(path); got != want {
			t.Errorf("allocOf(%q) = %q, want %q", path, got, want)
		}
	}
}

func TestStatFieldsAndUnlimitedLimits(t *testing.T) {
	stat := "cache 69120000\nrss 6479872\nswap 4096\ntotal_swap 8192\n"
	if got := field(stat, "swap"); got != 4096 {
		t.Errorf("swap = %d, want 4096 (not total_swap)", got)
	}
	if got := field("usage_usec 1500000\nuser_usec 1\n", "usage_usec"); got != 1500000 {
		t.Errorf("usage_usec = %d", got)
	}
	if limit(9223372036854771712) != 0 || limit(536870912) != 536870912 {
		t.Error("v1's no-limit value must read as 0 (unlimited), a real limit as itself")
	}
}
