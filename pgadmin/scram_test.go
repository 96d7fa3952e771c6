package pgadmin

import (
	"regexp"
	"testing"
)

// TestScramVerifierFormat checks PostgreSQL's verifier layout and a value
// computed independently for a fixed salt (RFC 7677 parameters).
func TestScramVerifierFormat(t *testing.T) {
	v, err := ScramVerifier("pencil")
	if err != nil {
		t.Fatal(err)
	}
	if !regexp.MustCompile(`^SCRAM-SHA-256\$4096:[A-Za-z0-9+/]{22}==\$[A-Za-z0-9+/]{43}=:[A-Za-z0-9+/]{43}=$`).MatchString(v) {
		t.Fatalf("verifier %q is not in PostgreSQL's format", v)
	}
	w, _ := ScramVerifier("pencil")
	if v == w {
		t.Fatal("two verifiers share a salt")
	}
}

func TestScramVerifierKnownValue(t *testing.T) {
	// Salt and expected keys from RFC 7677 section 3 (user "user", password "pencil").
	salt := []byte{0x5b, 0x6d, 0x99, 0x68, 0x9d, 0x12, 0x35, 0x8e, 0xec, 0xa0, 0x4b, 0x14, 0x12, 0x36, 0xfa, 0x81}
	got, err := scramVerifier("pencil", salt, 4096)
	if err != nil {
		t.Fatal(err)
	}
	want := "SCRAM-SHA-256$4096:W22ZaJ0SNY7soEsUEjb6gQ==$WG5d8oPm3OtcPnkdi4Uo7BkeZkBFzpcXkuLmtbsT4qY=:wfPLwcE6nTWhTAmQ7tl2KeoiWGPlZqQxSrmfPwDl2dU="
	if got != want {
		t.Fatalf("got %s\nwant %s", got, want)
	}
}
