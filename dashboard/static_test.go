package dashboard

import (
	"crypto/sha256"
	"encoding/hex"
	"io/fs"
	"strings"
	"testing"
)

// TestVendoredFilesAreThePinnedPackagesOnes: every file of static/vendor
// has the SHA-256 that scripts/assets.sh recorded when it copied it from
// the npm package pinned in assets/package-lock.json, and nothing else is
// vendored.
func TestVendoredFilesAreThePinnedPackagesOnes(t *testing.T) {
	sums, err := fs.ReadFile(staticFS, "static/vendor/SHA256SUMS")
	if err != nil {
		t.Fatal(err)
	}
	listed := map[string]bool{"SHA256SUMS": true}
	for line := range strings.Lines(string(sums)) {
		want, name, ok := strings.Cut(strings.TrimSpace(line), "  ")
		if !ok {
			t.Fatalf("SHA256SUMS line %q", line)
		}
		listed[name] = true
		b, err := fs.ReadFile(staticFS, "static/vendor/"+name)
		if err != nil {
			t.Fatal(err)
		}
		if got := sha256.Sum256(b); hex.EncodeToString(got[:]) != want {
			t.Errorf("%s: SHA-256 %x, SHA256SUMS says %s: run make assets", name, got, want)
		}
	}
	entries, _ := fs.ReadDir(staticFS, "static/vendor")
	for _, e := range entries {
		if !listed[e.Name()] {
			t.Errorf("static/vendor/%s is not in SHA256SUMS", e.Name())
		}
	}
}
