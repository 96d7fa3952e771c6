package httpapi

import (
	"bytes"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"unicode/utf8"
)

// basicAuth answers 401 unless the request carries the credentials; it
// compares digests in constant time.
func basicAuth(user, password string, next http.Handler) http.Handler {
	isOperator := operator(user, password)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !isOperator(r) {
			w.Header().Set("WWW-Authenticate", `Basic realm="pgbroker"`)
			writeError(w, http.StatusUnauthorized, "Unauthorized", "missing or wrong broker credentials")
			return
		}
		next.ServeHTTP(w, r)
	})
}

// operator reports whether a request carries the broker's basic-auth
// credentials; it compares digests in constant time.
func operator(user, password string) func(*http.Request) bool {
	wantUser, wantPass := sha256.Sum256([]byte(user)), sha256.Sum256([]byte(password))
	return func(r *http.Request) bool {
		u, p, ok := r.BasicAuth()
		gotUser, gotPass := sha256.Sum256([]byte(u)), sha256.Sum256([]byte(p))
		userOK := subtle.ConstantTimeCompare(gotUser[:], wantUser[:])
		passOK := subtle.ConstantTimeCompare(gotPass[:], wantPass[:])
		return ok && userOK&passOK == 1
	}
}

// limitBody answers 413 for bodies over max bytes.
func limitBody(max int64, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.ContentLength > max {
			writeError(w, http.StatusRequestEntityTooLarge, "", fmt.Sprintf("request body is larger than %d bytes", max))
			return
		}
		r.Body = http.MaxBytesReader(w, r.Body, max)
		next.ServeHTTP(w, r)
	})
}

// requireJSON answers 400 when a PUT or PATCH body is not one JSON object,
// so malformed input never reaches brokerapi (which would answer 422).
// OSB 2.17 "Response": 400 for a malformed request.
func requireJSON(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPut && r.Method != http.MethodPatch {
			next.ServeHTTP(w, r)
			return
		}
		body, err := io.ReadAll(r.Body)
		var tooLarge *http.MaxBytesError
		if errors.As(err, &tooLarge) {
			writeError(w, http.StatusRequestEntityTooLarge, "", fmt.Sprintf("request body is larger than %d bytes", tooLarge.Limit))
			return
		}
		if err != nil {
			writeError(w, http.StatusBadRequest, "", "cannot read request body: "+err.Error())
			return
		}
		if msg := objectProblem(body); msg != "" {
			writeError(w, http.StatusBadRequest, "", msg)
			return
		}
		r.Body = io.NopCloser(bytes.NewReader(body))
		// OSB bodies are JSON whatever the client called them: with a form
		// content type (curl -d sends one) brokerapi's FormValue would
		// consume the body as a form before decoding it.
		r.Header.Set("Content-Type", "application/json")
		next.ServeHTTP(w, r)
	})
}

// objectProblem says why body is not a single JSON object, or "".
func objectProblem(body []byte) string {
	dec := json.NewDecoder(bytes.NewReader(body))
	var obj map[string]json.RawMessage
	if err := dec.Decode(&obj); err != nil {
		var typeErr *json.UnmarshalTypeError
		if errors.As(err, &typeErr) {
			return "request body must be a JSON object, not " + typeErr.Value
		}
		return "request body is not valid JSON: " + err.Error()
	}
	if obj == nil {
		return "request body must be a JSON object, not null"
	}
	if _, err := dec.Token(); err != io.EOF {
		return "request body must hold one JSON object, found more after it"
	}
	if !utf8.Valid(body) {
		return "request body must be UTF-8 text"
	}
	return valueProblem(body)
}

// valueProblem says which string or number of the JSON document body the
// broker cannot carry, or "": U+0000, which PostgreSQL text and jsonb cannot
// store, and numbers beyond float64 (lager's log redaction panics on them).
func valueProblem(body []byte) string {
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	for {
		tok, err := dec.Token()
		if err != nil {
			return ""
		}
		switch v := tok.(type) {
		case string:
			if strings.ContainsRune(v, 0) {
				return "request body must not hold NUL characters (\\u0000)"
			}
		case json.Number:
			if _, err := v.Float64(); err != nil {
				return fmt.Sprintf("request body holds the number %.40s, out of range", v)
			}
		}
	}
}

// requireText answers 400 when the path or a query parameter is not UTF-8
// text or holds a NUL character: instance, binding and operation ids are
// PostgreSQL text, which can hold neither.
func requireText(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !isText(r.URL.Path) {
			writeError(w, http.StatusBadRequest, "", "the request path must be UTF-8 text without NUL characters")
			return
		}
		for key, values := range r.URL.Query() {
			for _, v := range append(values, key) {
				if !isText(v) {
					writeError(w, http.StatusBadRequest, "", "query parameters must be UTF-8 text without NUL characters")
					return
				}
			}
		}
		next.ServeHTTP(w, r)
	})
}

func isText(s string) bool { return utf8.ValidString(s) && !strings.ContainsRune(s, 0) }

// writeError writes an OSB error body {"error": ..., "description": ...}.
func writeError(w http.ResponseWriter, status int, code, description string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	body := map[string]string{"description": description}
	if code != "" {
		body["error"] = code
	}
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(body)
}
