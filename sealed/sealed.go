// Package sealed seals and opens the items of a secret (a Nomad Variable's
// key/value pairs) with envelope encryption, so that a copy can be kept
// where the plain text must never be: the state database. Each envelope has
// a fresh random 256-bit data key that encrypts the items (JSON) with
// AES-256-GCM; the data key is itself encrypted (wrapped) with the
// operator's key (PGBROKER_SECRETS_KEY), also AES-256-GCM. Both carry the
// secret's path as additional authenticated data, so an envelope copied to
// another path does not open. Only Go's standard AEAD is used.
package sealed

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strings"
)

// KeySize is the length of the operator's key and of each data key, in bytes.
const KeySize = 32

// Errors callers tell apart. Neither names a key or an item.
var (
	// ErrOtherKey: the envelope was sealed with another operator key.
	ErrOtherKey = errors.New("sealed with another key")
	// ErrCorrupt: the envelope does not authenticate (tampered with, truncated,
	// or sealed for another path).
	ErrCorrupt = errors.New("the sealed copy does not authenticate: tampered with, or sealed for another path")
	// ErrNoCopy: no sealed copy is kept for that path.
	ErrNoCopy = errors.New("no sealed copy in the state database")
	// ErrNoKey: neither PGBROKER_SECRETS_KEY nor PGBROKER_SECRETS_KEY_FILE is set.
	ErrNoKey = errors.New("PGBROKER_SECRETS_KEY (or PGBROKER_SECRETS_KEY_FILE) is required: base64 of 32 random bytes " +
		"(`head -c32 /dev/urandom | base64`); it encrypts the copies of instances' secrets in the state database")
)

// Key is the operator's key. Its String and GoString give the key id only.
type Key struct {
	aead   cipher.AEAD
	id     string
	derive []byte // HMAC key of Derive: SHA-256 of the raw key with a label, never the raw key itself
}

// Envelope is one sealed secret as stored (table sealed_variables).
type Envelope struct {
	KeyID      string // ID of the operator key that wrapped the data key
	WrappedKey []byte // nonce (12 bytes) then the data key sealed with the operator key
	Nonce      []byte // nonce of Ciphertext (12 bytes)
	Ciphertext []byte // the items as JSON, sealed with the data key
}

// LoadKey reads the operator's key from value (PGBROKER_SECRETS_KEY), else
// from the file named by file (PGBROKER_SECRETS_KEY_FILE): base64 (standard
// or URL alphabet, padding optional, surrounding white space ignored) of
// exactly 32 bytes. Errors name the variable, never the value: ErrNoKey when
// both are empty.
func LoadKey(value, file string) (*Key, error) {
	name := "PGBROKER_SECRETS_KEY"
	switch {
	case value != "" && file != "":
		return nil, errors.New("set PGBROKER_SECRETS_KEY or PGBROKER_SECRETS_KEY_FILE, not both")
	case value == "" && file == "":
		return nil, ErrNoKey
	case file != "":
		name = "PGBROKER_SECRETS_KEY_FILE"
		b, err := os.ReadFile(file)
		if err != nil {
			return nil, fmt.Errorf("read %s: %w", name, err)
		}
		value = string(b)
	}
	raw, ok := decodeBase64(strings.TrimSpace(value))
	if !ok || len(raw) != KeySize {
		return nil, fmt.Errorf("%s must be base64 of exactly %d bytes (`head -c32 /dev/urandom | base64`)", name, KeySize)
	}
	return NewKey(raw)
}

// decodeBase64 accepts the standard and the URL alphabet, padded or not.
func decodeBase64(s string) ([]byte, bool) {
	for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.RawStdEncoding, base64.URLEncoding, base64.RawURLEncoding} {
		if b, err := enc.DecodeString(s); err == nil {
			return b, true
		}
	}
	return nil, false
}

// NewKey returns the operator key raw (KeySize bytes).
func NewKey(raw []byte) (*Key, error) {
	if len(raw) != KeySize {
		return nil, fmt.Errorf("a secrets key is %d bytes, not %d", KeySize, len(raw))
	}
	aead, err := newAEAD(raw)
	if err != nil {
		return nil, err
	}
	sum := sha256.Sum256(raw)
	derive := sha256.Sum256(append([]byte("pgbroker key derivation\x00"), raw...))
	return &Key{aead: aead, id: hex.EncodeToString(sum[:8]), derive: derive[:]}, nil
}

// Derive returns 32 bytes for purpose (HMAC-SHA256 keyed by a hash of the
// operator key): a key of its own for another use (the dashboard's session
// cookies), so that no second secret has to be kept, and that knowing the
// derived key tells nothing of the operator key or of another purpose's.
func (k *Key) Derive(purpose string) []byte {
	mac := hmac.New(sha256.New, k.derive)
	mac.Write([]byte(purpose))
	return mac.Sum(nil)
}

// ID names the key without revealing it: the first 8 bytes of its SHA-256,
// in hex.
func (k *Key) ID() string { return k.id }

// String gives the key id only, so that a key printed by mistake leaks nothing.
func (k *Key) String() string { return "secrets key " + k.id }

// GoString is String, for %#v.
func (k *Key) GoString() string { return k.String() }

// Seal encrypts items for path with a fresh data key.
func (k *Key) Seal(path string, items map[string]string) (Envelope, error) {
	plain, err := json.Marshal(items)
	if err != nil {
		return Envelope{}, fmt.Errorf("seal %s: %w", path, err)
	}
	dataKey := make([]byte, KeySize)
	if _, err := rand.Read(dataKey); err != nil {
		return Envelope{}, fmt.Errorf("seal %s: %w", path, err)
	}
	defer clear(dataKey)
	data, err := newAEAD(dataKey)
	if err != nil {
		return Envelope{}, err
	}
	ad := additionalData(path)
	keyNonce, nonce := randomNonce(), randomNonce()
	wrapped := k.aead.Seal(keyNonce, keyNonce, dataKey, ad)
	return Envelope{KeyID: k.id, WrappedKey: wrapped, Nonce: nonce, Ciphertext: data.Seal(nil, nonce, plain, ad)}, nil
}

// Open decrypts the envelope sealed for path. Errors: ErrOtherKey (naming
// both key ids), ErrCorrupt; both wrapped with the path.
func (k *Key) Open(path string, e Envelope) (map[string]string, error) {
	if e.KeyID != k.id {
		return nil, fmt.Errorf("open the sealed copy of %s: %w (key id %s; this broker's is %s)", path, ErrOtherKey, e.KeyID, k.id)
	}
	ad := additionalData(path)
	ns := k.aead.NonceSize()
	if len(e.WrappedKey) < ns || len(e.Nonce) != ns {
		return nil, fmt.Errorf("open the sealed copy of %s: %w", path, ErrCorrupt)
	}
	dataKey, err := k.aead.Open(nil, e.WrappedKey[:ns], e.WrappedKey[ns:], ad)
	if err != nil {
		return nil, fmt.Errorf("open the sealed copy of %s: %w", path, ErrCorrupt)
	}
	defer clear(dataKey)
	data, err := newAEAD(dataKey)
	if err != nil {
		return nil, fmt.Errorf("open the sealed copy of %s: %w", path, ErrCorrupt)
	}
	plain, err := data.Open(nil, e.Nonce, e.Ciphertext, ad)
	if err != nil {
		return nil, fmt.Errorf("open the sealed copy of %s: %w", path, ErrCorrupt)
	}
	var items map[string]string
	if err := json.Unmarshal(plain, &items); err != nil {
		return nil, fmt.Errorf("open the sealed copy of %s: %w", path, ErrCorrupt)
	}
	return items, nil
}

// additionalData binds an envelope to its path (and to this format).
func additionalData(path string) []byte { return []byte("pgbroker sealed variable v1\x00" + path) }

func newAEAD(key []byte) (cipher.AEAD, error) {
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, fmt.Errorf("AES key: %w", err)
	}
	return cipher.NewGCM(block)
}

// randomNonce is a fresh 96-bit GCM nonce; each key seals at most a few
// thousand envelopes over its life, far from the 2^32 bound of random nonces.
func randomNonce() []byte {
	n := make([]byte, 12)
	_, _ = rand.Read(n) // crypto/rand.Read never fails (Go 1.24+)
	return n
}
