package webauth

import (
	"crypto/subtle"
	"errors"
	"net/http"
	"net/url"
)

// CSRFHeader carries the session's CSRF token on a state-changing request
// to the management API; the dashboard's forms send it as the field
// CSRFField.
const (
	CSRFHeader = "X-CSRF-Token"
	CSRFField  = "csrf"
)

// Errors of CheckWrite.
var (
	ErrCSRF     = errors.New("the request carries no valid CSRF token of this session: reload the page and try again")
	ErrOrigin   = errors.New("the request comes from another origin than this broker's dashboard")
	ErrReadOnly = errors.New("a read-only user may not change anything")
)

// CheckWrite checks a state-changing request made with ss: ss may change
// state, token is ss's CSRF token, and the request's Origin (or, without
// one, its Referer) is origin, the dashboard's scheme://host[:port]
// (OWASP CSRF cheat sheet: verify the origin with standard headers, and a
// synchronizer token). Errors: ErrReadOnly, ErrCSRF, ErrOrigin.
func CheckWrite(r *http.Request, ss Session, token, origin string) error {
	if ss.ReadOnly {
		return ErrReadOnly
	}
	return CheckOrigin(r, ss, token, origin)
}

// CheckOrigin is CheckWrite for a request a read-only user may make too
// (log out). Errors: ErrCSRF, ErrOrigin.
func CheckOrigin(r *http.Request, ss Session, token, origin string) error {
	if token == "" || subtle.ConstantTimeCompare([]byte(token), []byte(ss.CSRF)) != 1 {
		return ErrCSRF
	}
	if RequestOrigin(r) != origin {
		return ErrOrigin
	}
	return nil
}

// RequestOrigin is r's Origin header, else the origin of its Referer, else "".
func RequestOrigin(r *http.Request) string {
	if o := r.Header.Get("Origin"); o != "" {
		return o
	}
	u, err := url.Parse(r.Header.Get("Referer"))
	if err != nil || u.Scheme == "" || u.Host == "" {
		return ""
	}
	return u.Scheme + "://" + u.Host
}

// OriginOf is the origin (scheme://host[:port]) of base, the broker's
// external URL. Errors: base is not an absolute URL.
func OriginOf(base string) (string, error) {
	u, err := url.Parse(base)
	if err != nil || u.Scheme == "" || u.Host == "" {
		return "", errors.New("the dashboard's base URL must be absolute")
	}
	return u.Scheme + "://" + u.Host, nil
}

// Mutates reports whether method changes state (anything but GET, HEAD
// and OPTIONS).
func Mutates(method string) bool {
	return method != http.MethodGet && method != http.MethodHead && method != http.MethodOptions
}
