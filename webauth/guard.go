package webauth

import (
	"encoding/json"
	"errors"
	"net/http"
	"strings"
)

// Guard admits a management API request for the operator (operator(r)
// true: the broker's basic auth) or for a dashboard session of the
// instance its path names (/api/instances/{instance_id}/…), and puts the
// Caller in the request's context. A session's state-changing request must
// pass CheckWrite with the CSRFHeader; paths outside one instance
// (/api/openapi.yaml) need no login. Refusals are JSON: 401 without
// credentials or session, 403 for a read-only user, a missing CSRF token
// or a foreign Origin.
func (s *Sessions) Guard(operator func(*http.Request) bool, origin string, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if operator(r) {
			next.ServeHTTP(w, r.WithContext(WithCaller(r.Context(), Caller{Operator: true})))
			return
		}
		id, ok := instanceOfPath(r.URL.Path)
		if !ok {
			if r.URL.Path == "/api/openapi.yaml" {
				next.ServeHTTP(w, r)
				return
			}
			unauthorized(w)
			return
		}
		ss, err := s.Verify(r.Context(), r, id)
		if err != nil {
			unauthorized(w)
			return
		}
		if Mutates(r.Method) {
			if err := CheckWrite(r, ss, r.Header.Get(CSRFHeader), origin); err != nil {
				writeError(w, http.StatusForbidden, "Forbidden", err.Error())
				return
			}
		}
		next.ServeHTTP(w, r.WithContext(WithCaller(r.Context(), Caller{Session: &ss})))
	})
}

// instanceOfPath is the instance id of a path /api/instances/{id}/….
func instanceOfPath(path string) (string, bool) {
	rest, ok := strings.CutPrefix(path, "/api/instances/")
	if !ok {
		return "", false
	}
	id, _, _ := strings.Cut(rest, "/")
	return id, id != ""
}

func unauthorized(w http.ResponseWriter) {
	w.Header().Set("WWW-Authenticate", `Basic realm="pgbroker"`)
	writeError(w, http.StatusUnauthorized, "Unauthorized", "missing or wrong broker credentials, and no dashboard session of this instance")
}

func writeError(w http.ResponseWriter, status int, rule, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]string{"error": rule, "description": msg})
}

// IsRefusal reports whether err is one of CheckWrite's or ErrNoSession.
func IsRefusal(err error) bool {
	return errors.Is(err, ErrNoSession) || errors.Is(err, ErrCSRF) || errors.Is(err, ErrOrigin) || errors.Is(err, ErrReadOnly)
}
