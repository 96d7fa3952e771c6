// Package leak finds secrets in text the way a reader of a log, a job spec
// or an API answer would meet them: as written, JSON-escaped (a PEM's
// newlines become \n), base64-encoded (standard or URL alphabet, padded or
// not), or, for a PEM block, any one line of its base64 body, which no
// quoting changes. The acceptance tests use it to check logs, Nomad job
// specs and Variables listings (issue 12, hole 8: a check that searched for
// a PEM with real newlines in JSON could never fail).
package leak

import (
	"encoding/base64"
	"encoding/json"
	"strings"
)

// minNeedle is the shortest text searched for: shorter ones match by chance.
const minNeedle = 16

// Forms returns the texts that reveal secret: the secret itself, its
// JSON-escaped form, its base64 encodings and, when it is PEM, each line of
// the base64 body of 16 characters or more. Forms of secrets shorter than 8
// characters are not searched (nil).
func Forms(secret string) []string {
	if len(secret) < 8 {
		return nil
	}
	forms := []string{secret}
	quoted, _ := json.Marshal(secret)
	forms = append(forms, string(quoted[1:len(quoted)-1]))
	for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.URLEncoding, base64.RawStdEncoding, base64.RawURLEncoding} {
		forms = append(forms, enc.EncodeToString([]byte(secret)))
	}
	if strings.Contains(secret, "-----BEGIN ") {
		for _, line := range strings.Split(secret, "\n") {
			line = strings.TrimSpace(line)
			if len(line) >= minNeedle && !strings.HasPrefix(line, "-----") && !strings.Contains(line, ":") {
				forms = append(forms, line)
			}
		}
	}
	return forms
}

// Find returns the names of the secrets (name -> value) that text reveals in
// any of their Forms, sorted as secrets' names are given in order.
func Find(text string, order []string, secrets map[string]string) []string {
	var found []string
	for _, name := range order {
		for _, form := range Forms(secrets[name]) {
			if strings.Contains(text, form) {
				found = append(found, name)
				break
			}
		}
	}
	return found
}
