package backup

import "testing"

func TestAllocIndexReadsTheIndexOfTheAllocationName(t *testing.T) {
	for name, want := range map[string]int{"pg-0123456789ab-nodes.node-0[0]": 0, "pg-x-nodes.node-12[0]": 12} {
		if got, err := nodeIndex(name); err != nil || got != want {
			t.Errorf("nodeIndex(%q) = %d, %v; want %d", name, got, err, want)
		}
	}
	for _, name := range []string{"pg-x-nodes.node[0]", "pg-x-nodes.node-[0]", "pg-x-nodes.node-a[0]", "pg-x-nodes.node--1[0]", "pg-x-nodes.node-1"} {
		if _, err := nodeIndex(name); err == nil {
			t.Errorf("nodeIndex(%q) accepted", name)
		}
	}
}

func TestBaseBackupJobIDIsStablePerBaseBackup(t *testing.T) {
	if got := BaseBackupJobID("0123456789ab", "5f0c"); got != "pg-0123456789ab-basebackup-5f0c" {
		t.Errorf("BaseBackupJobID = %q", got)
	}
}
