package sealed

import (
	"bytes"
	"encoding/base64"
	"errors"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func testKey(t *testing.T, fill byte) (*Key, []byte) {
	t.Helper()
	raw := bytes.Repeat([]byte{fill}, KeySize)
	k, err := NewKey(raw)
	if err != nil {
		t.Fatal(err)
	}
	return k, raw
}

const path = "nomad/jobs/pg-0123456789ab-nodes"

var items = map[string]string{"admin_password": "s3cret-admin-pw", "replication_password": "s3cret-repl-pw"}

func TestSealThenOpenGivesTheItemsBack(t *testing.T) {
	k, _ := testKey(t, 1)
	e, err := k.Seal(path, items)
	if err != nil {
		t.Fatal(err)
	}
	got, err := k.Open(path, e)
	if err != nil || !maps.Equal(got, items) {
		t.Fatalf("Open = %v, %v; want the sealed items", got, err)
	}
	for _, b := range [][]byte{e.Ciphertext, e.WrappedKey, e.Nonce} {
		for _, v := range items {
			if bytes.Contains(b, []byte(v)) {
				t.Fatalf("an item's value appears in the envelope in plain text")
			}
		}
	}
	again, _ := k.Seal(path, items)
	if bytes.Equal(again.Ciphertext, e.Ciphertext) || bytes.Equal(again.WrappedKey, e.WrappedKey) {
		t.Error("two seals of the same items gave the same bytes: the data key or nonce is not fresh")
	}
}

func TestOpenWithAnotherKeySaysSoAndNamesNoKey(t *testing.T) {
	k1, raw1 := testKey(t, 1)
	k2, raw2 := testKey(t, 2)
	e, _ := k1.Seal(path, items)
	_, err := k2.Open(path, e)
	if !errors.Is(err, ErrOtherKey) || !strings.Contains(err.Error(), k1.ID()) || !strings.Contains(err.Error(), k2.ID()) {
		t.Fatalf("Open with another key: %v; want ErrOtherKey naming both key ids", err)
	}
	noSecretIn(t, err.Error(), raw1, raw2)
	// Same id forged onto the envelope: the wrapped key still does not open.
	e.KeyID = k2.ID()
	if _, err := k2.Open(path, e); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("Open of an envelope relabelled with this key's id: %v; want ErrCorrupt", err)
	}
}

func TestOpenRefusesTamperedEnvelopesAndAnotherPath(t *testing.T) {
	k, raw := testKey(t, 3)
	e, _ := k.Seal(path, items)
	flip := func(b []byte, i int) []byte { c := bytes.Clone(b); c[i] ^= 1; return c }
	cases := map[string]func() (string, Envelope){
		"ciphertext byte flipped":  func() (string, Envelope) { c := e; c.Ciphertext = flip(e.Ciphertext, 0); return path, c },
		"wrapped key byte flipped": func() (string, Envelope) { c := e; c.WrappedKey = flip(e.WrappedKey, 20); return path, c },
		"nonce byte flipped":       func() (string, Envelope) { c := e; c.Nonce = flip(e.Nonce, 0); return path, c },
		"ciphertext truncated":     func() (string, Envelope) { c := e; c.Ciphertext = e.Ciphertext[:4]; return path, c },
		"wrapped key empty":        func() (string, Envelope) { c := e; c.WrappedKey = nil; return path, c },
		"copied to another path":   func() (string, Envelope) { return "nomad/jobs/pg-ba9876543210-nodes", e },
	}
	for name, mk := range cases {
		t.Run(name, func(t *testing.T) {
			p, c := mk()
			got, err := k.Open(p, c)
			if !errors.Is(err, ErrCorrupt) || got != nil {
				t.Fatalf("Open = %v, %v; want ErrCorrupt", got, err)
			}
			if !strings.Contains(err.Error(), p) {
				t.Errorf("error %q does not name the path", err)
			}
			noSecretIn(t, err.Error(), raw)
		})
	}
}

func TestLoadKeyNamesTheVariableNeverTheValue(t *testing.T) {
	good := base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{7}, KeySize))
	short := base64.StdEncoding.EncodeToString([]byte("too-short-key-material"))
	file := filepath.Join(t.TempDir(), "key")
	if err := os.WriteFile(file, []byte(good+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	fromValue, err := LoadKey(good, "")
	if err != nil {
		t.Fatal(err)
	}
	fromFile, err := LoadKey("", file)
	if err != nil || fromFile.ID() != fromValue.ID() {
		t.Fatalf("LoadKey from file: %v, %v; want the same key as from the value", fromFile, err)
	}
	for _, tc := range []struct{ value, file, want string }{
		{"", "", "PGBROKER_SECRETS_KEY"},
		{short, "", "PGBROKER_SECRETS_KEY must be base64 of exactly 32 bytes"},
		{"not base64 !!", "", "PGBROKER_SECRETS_KEY must be base64"},
		{"", filepath.Join(t.TempDir(), "missing"), "read PGBROKER_SECRETS_KEY_FILE"},
		{good, file, "not both"},
	} {
		_, err := LoadKey(tc.value, tc.file)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("LoadKey(%q, %q) = %v; want an error containing %q", tc.value, tc.file, err, tc.want)
			continue
		}
		if tc.value != "" && strings.Contains(err.Error(), tc.value) {
			t.Errorf("error %q repeats the key's value", err)
		}
	}
	for _, s := range []string{fmt.Sprint(fromValue), fmt.Sprintf("%v %+v %#v %s", fromValue, fromValue, fromValue, fromValue)} {
		noSecretIn(t, s, bytes.Repeat([]byte{7}, KeySize))
		if strings.Contains(s, good) {
			t.Errorf("formatting a key printed it: %q", s)
		}
	}
}

// noSecretIn fails when s holds a raw key in any common encoding.
func noSecretIn(t *testing.T, s string, raws ...[]byte) {
	t.Helper()
	for _, raw := range raws {
		for _, enc := range []string{string(raw), base64.StdEncoding.EncodeToString(raw), fmt.Sprintf("%x", raw), fmt.Sprint(raw)} {
			if strings.Contains(s, enc) {
				t.Fatalf("%q contains a key", s)
			}
		}
	}
}

func TestDeriveGivesOneKeyPerPurposeAndKey(t *testing.T) {
	a, _ := NewKey(bytes.Repeat([]byte{1}, KeySize))
	b, _ := NewKey(bytes.Repeat([]byte{2}, KeySize))
	if len(a.Derive("x")) != 32 || !bytes.Equal(a.Derive("x"), a.Derive("x")) {
		t.Fatal("Derive is not 32 stable bytes")
	}
	if bytes.Equal(a.Derive("x"), a.Derive("y")) || bytes.Equal(a.Derive("x"), b.Derive("x")) {
		t.Fatal("two purposes or two keys derive the same bytes")
	}
	if bytes.Contains(a.Derive("x"), bytes.Repeat([]byte{1}, 8)) {
		t.Fatal("the derived key shows the operator key")
	}
}
