package nomad

import "testing"

func TestHCLVarsQuotesEveryValue(t *testing.T) {
	got := hclVars(map[string]any{
		"instance":    "abc",
		"memory_mib":  512,
		"datacenters": []string{"dc1", "dc\"2"},
		"data_root":   "/srv/${evil}/%{x}",
	})
	want := "data_root = \"/srv/$${evil}/%%{x}\"\n" +
		"datacenters = [\"dc1\", \"dc\\\"2\"]\n" +
		"instance = \"abc\"\n" +
		"memory_mib = 512\n"
	if got != want {
		t.Fatalf("got\n%s\nwant\n%s", got, want)
	}
}
