package mgmtapi

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"

	"github.com/gorilla/mux"

	"github.com/pgbroker/pgbroker/store"
)

// apiError is a 4xx or 5xx answer: Rule names the rule broken (or what
// failed), Msg says it in a sentence.
type apiError struct {
	Status int
	Rule   string
	Msg    string
	cause  error // the dependency's error behind a 5xx, if any
}

func (e *apiError) Error() string { return e.Msg }
func (e *apiError) Unwrap() error { return e.cause }

func failure(status int, rule, format string, args ...any) *apiError {
	return &apiError{Status: status, Rule: rule, Msg: fmt.Sprintf(format, args...)}
}

// dependency is a 500 naming what failed; the message never carries a secret
// (pgadmin and provisioner redact them).
func dependency(what string, err error) *apiError {
	return &apiError{Status: http.StatusInternalServerError, Rule: "DependencyFailure", Msg: fmt.Sprintf("%s: %v", what, err), cause: err}
}

// stateDB is the answer to a state database error met while doing what: a
// 400 for a value PostgreSQL refuses to store (store.ErrInvalidValue: a NUL
// character, invalid UTF-8), a 500 naming the state database otherwise.
func stateDB(what string, err error) *apiError {
	if errors.Is(err, store.ErrInvalidValue) {
		return failure(http.StatusBadRequest, "InvalidValue", "%v: send UTF-8 text without NUL characters", err)
	}
	return &apiError{Status: http.StatusInternalServerError, Rule: "StateDatabaseError",
		Msg: fmt.Sprintf("the state database failed to %s: %v", what, err), cause: err}
}

// fail answers err: an *apiError as it says, anything else as a 500. A
// request whose client went away gets no answer.
func (a *API) fail(w http.ResponseWriter, r *http.Request, err error) {
	if errors.Is(err, context.Canceled) && r.Context().Err() != nil {
		return
	}
	var ae *apiError
	if !errors.As(err, &ae) {
		ae = dependency("management request", err)
	}
	if ae.Status >= 500 {
		a.log.ErrorContext(r.Context(), "management request failed", slog.String("instance_id", mux.Vars(r)["instance_id"]),
			slog.String("path", r.URL.Path), slog.String("error", ae.Msg))
	}
	writeError(w, ae.Status, ae.Rule, ae.Msg)
}

// writeError writes {"error": rule, "description": msg}, the OSB error shape.
func writeError(w http.ResponseWriter, status int, rule, msg string) {
	writeJSON(w, status, map[string]string{"error": rule, "description": msg})
}

// writeJSON writes body as the JSON answer with status, HTML characters
// unescaped.
func writeJSON(w http.ResponseWriter, status int, body any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(body)
}

// readBody decodes a JSON object into v, refusing unknown keys, wrong types
// and trailing data (400 naming the problem); an empty body is {}.
func readBody(r *http.Request, v any) error {
	body, err := io.ReadAll(r.Body)
	var tooLarge *http.MaxBytesError
	if errors.As(err, &tooLarge) {
		return failure(http.StatusRequestEntityTooLarge, "BodyTooLarge", "request body is larger than %d bytes", tooLarge.Limit)
	}
	if err != nil {
		return failure(http.StatusBadRequest, "Body", "read request body: %v", err)
	}
	if len(strings.TrimSpace(string(body))) == 0 {
		body = []byte("{}")
	}
	dec := json.NewDecoder(strings.NewReader(string(body)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		var typeErr *json.UnmarshalTypeError
		switch {
		case errors.As(err, &typeErr):
			return failure(http.StatusBadRequest, "Type", "%s must be a JSON %s", typeErr.Field, typeErr.Type.Kind())
		case strings.HasPrefix(err.Error(), "json: unknown field "):
			return failure(http.StatusBadRequest, "UnknownField", "%s is not a field of this request", strings.TrimPrefix(err.Error(), "json: unknown field "))
		}
		return failure(http.StatusBadRequest, "JSON", "request body must be one JSON object: %v", err)
	}
	if dec.More() {
		return failure(http.StatusBadRequest, "JSON", "request body must be one JSON object, without trailing data")
	}
	return nil
}
