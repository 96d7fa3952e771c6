// Package webauth says who calls the dashboard and the management API, and
// what they may do: the broker's operator (basic auth, every instance) or a
// database user of one instance, logged in to its dashboard (a signed
// session cookie scoped to that instance). It seals and opens session
// cookies, checks the CSRF token and Origin of state-changing requests, and
// rate-limits failed logins.
package webauth

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"strings"
	"time"
)

// Session is one dashboard login: a database user of one instance.
type Session struct {
	InstanceID string    `json:"i"`
	Username   string    `json:"u"` // the database role that logged in (pg_authid.rolname)
	ReadOnly   bool      `json:"r"` // a member of the instance's reader group: the view holds no action
	CSRF       string    `json:"c"` // hex of 32 random bytes; state-changing requests carry it
	Stamp      string    `json:"p"` // the user's password stamp at login (users.User.PasswordStamp): a new password ends the session
	Expires    time.Time `json:"e"`
}

// ErrNoSession means the request carries no session of the instance, or
// one that is forged, expired or another instance's.
var ErrNoSession = errors.New("no valid dashboard session for this instance: log in again")

// Sessions seals sessions into cookie values and opens them. A value is
// base64url(JSON) "." base64url(HMAC-SHA256 over the JSON): the browser
// holds it, the broker keeps nothing, so any broker sharing the key serves
// it. Safe for concurrent use.
type Sessions struct {
	key    []byte
	ttl    time.Duration
	secure bool // cookies carry Secure (the dashboard is served over HTTPS)
	// recheck, when set (Revalidate), asks whether a session's user still stands.
	recheck *revalidation
}

// NewSessions returns Sessions signing with a key derived from secret (the
// broker's PGBROKER_SECRETS_KEY: no new secret to keep), lasting ttl, and
// marking cookies Secure when secure.
func NewSessions(secret []byte, ttl time.Duration, secure bool) *Sessions {
	mac := hmac.New(sha256.New, secret)
	mac.Write([]byte("pgbroker dashboard session v1"))
	return &Sessions{key: mac.Sum(nil), ttl: ttl, secure: secure}
}

// New is a fresh session of username on instanceID, with a new CSRF token,
// expiring ttl from now.
func (s *Sessions) New(instanceID, username string, readOnly bool, now time.Time) Session {
	token := make([]byte, 32)
	_, _ = rand.Read(token) // crypto/rand never fails on Linux
	return Session{InstanceID: instanceID, Username: username, ReadOnly: readOnly,
		CSRF: hex.EncodeToString(token), Expires: now.Add(s.ttl).UTC().Truncate(time.Second)}
}

// Seal is the cookie value of ss.
func (s *Sessions) Seal(ss Session) string {
	body, _ := json.Marshal(ss)
	return base64.RawURLEncoding.EncodeToString(body) + "." + base64.RawURLEncoding.EncodeToString(s.sign(body))
}

// Open returns the session sealed in value if its signature holds, it is
// instanceID's and it has not expired at now. Errors: ErrNoSession.
func (s *Sessions) Open(value, instanceID string, now time.Time) (Session, error) {
	b64body, b64sig, ok := strings.Cut(value, ".")
	if !ok {
		return Session{}, ErrNoSession
	}
	body, err1 := base64.RawURLEncoding.DecodeString(b64body)
	sig, err2 := base64.RawURLEncoding.DecodeString(b64sig)
	if err1 != nil || err2 != nil || !hmac.Equal(sig, s.sign(body)) {
		return Session{}, ErrNoSession
	}
	var ss Session
	if json.Unmarshal(body, &ss) != nil || ss.InstanceID != instanceID || !now.Before(ss.Expires) || ss.CSRF == "" {
		return Session{}, ErrNoSession
	}
	return ss, nil
}

func (s *Sessions) sign(body []byte) []byte {
	mac := hmac.New(sha256.New, s.key)
	mac.Write(body)
	return mac.Sum(nil)
}
