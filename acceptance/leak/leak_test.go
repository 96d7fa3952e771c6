package leak

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"slices"
	"strings"
	"testing"
)

func testKeyPEM(t *testing.T) string {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	return string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}))
}

// Each planted leak is one a naive strings.Contains(text, secret) misses,
// except the first, and Find must see every one.
func TestFindSeesEveryFormOfAPlantedSecret(t *testing.T) {
	key := testKeyPEM(t)
	password := "Zq8vT3nK1mXw9bLc4pRf"
	quoted, _ := json.Marshal(map[string]string{"server_private_key": key})
	for name, text := range map[string]string{
		"as written":          "log line: " + password,
		"PEM in a JSON value": string(quoted),
		"PEM base64-encoded":  base64.StdEncoding.EncodeToString([]byte(key)),
		"password base64url":  "Authorization: Basic " + base64.RawURLEncoding.EncodeToString([]byte(password)),
		"PEM body re-wrapped": strings.ReplaceAll(key, "\n", "\r\n"),
	} {
		if got := Find(text, []string{"key", "password"}, map[string]string{"key": key, "password": password}); len(got) == 0 {
			t.Errorf("%s: no secret found in %q", name, text)
		}
	}
	if naive := strings.Contains(string(quoted), key); naive {
		t.Fatal("the JSON-escaped PEM contains the PEM as written: the test plants nothing a naive check misses")
	}
}

func TestFindIsQuietOnTextWithoutSecrets(t *testing.T) {
	key := testKeyPEM(t)
	text := `{"job":"pg-0123456789ab-nodes","meta":{"pgbroker":"local"},"template":"{{ with nomadVar \"nomad/jobs/pg-0123456789ab-nodes\" }}"}`
	if got := Find(text, []string{"key", "short"}, map[string]string{"key": key, "short": "abc"}); !slices.Equal(got, nil) {
		t.Fatalf("found %v in text holding no secret", got)
	}
	if Forms("abc") != nil {
		t.Fatal("a secret shorter than 8 characters is searched for")
	}
}
