package webauth

import (
	"crypto/sha256"
	"encoding/hex"
	"net/http"
	"time"
)

// CookieName is the name of instanceID's session cookie: one per instance,
// so a browser logged in to two dashboards holds two sessions, and a
// session never travels to another instance's pages under its name.
func CookieName(instanceID string) string {
	sum := sha256.Sum256([]byte(instanceID))
	return "pgbroker_session_" + hex.EncodeToString(sum[:8])
}

// Cookie is the Set-Cookie of ss: HttpOnly, SameSite=Strict, Secure over
// HTTPS, Path "/" (the dashboard's pages and the management API both read
// it), expiring with the session.
func (s *Sessions) Cookie(ss Session) *http.Cookie {
	return &http.Cookie{Name: CookieName(ss.InstanceID), Value: s.Seal(ss), Path: "/", Expires: ss.Expires,
		MaxAge: int(time.Until(ss.Expires).Seconds()), HttpOnly: true, Secure: s.secure, SameSite: http.SameSiteStrictMode}
}

// Clear is the Set-Cookie that removes instanceID's session (log out).
func (s *Sessions) Clear(instanceID string) *http.Cookie {
	return &http.Cookie{Name: CookieName(instanceID), Value: "", Path: "/", MaxAge: -1,
		HttpOnly: true, Secure: s.secure, SameSite: http.SameSiteStrictMode}
}

// FromRequest opens instanceID's session cookie of r. Errors: ErrNoSession.
func (s *Sessions) FromRequest(r *http.Request, instanceID string, now time.Time) (Session, error) {
	c, err := r.Cookie(CookieName(instanceID))
	if err != nil {
		return Session{}, ErrNoSession
	}
	return s.Open(c.Value, instanceID, now)
}
