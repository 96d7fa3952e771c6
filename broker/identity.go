package broker

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"strings"
	"unicode/utf8"

	"github.com/pivotal-cf/brokerapi/v10/middlewares"

	"github.com/pgbroker/pgbroker/store"
)

// ParseOriginatingIdentity decodes an X-Broker-API-Originating-Identity
// header value: "<platform> <base64 of a JSON object>" (OSB 2.17
// "Originating Identity"). An empty header is the zero Origin. Errors say
// what is wrong with the value, never repeat it.
func ParseOriginatingIdentity(header string) (store.Origin, error) {
	if header == "" {
		return store.Origin{}, nil
	}
	platform, encoded, ok := strings.Cut(strings.TrimSpace(header), " ")
	if !ok || platform == "" || encoded == "" {
		return store.Origin{}, errors.New("X-Broker-API-Originating-Identity must be \"<platform> <base64-encoded JSON object>\"")
	}
	raw, err := base64.StdEncoding.DecodeString(strings.TrimSpace(encoded))
	if err != nil {
		return store.Origin{}, errors.New("X-Broker-API-Originating-Identity: the value after the platform is not base64")
	}
	var obj map[string]any
	if err := json.Unmarshal(raw, &obj); err != nil || obj == nil {
		return store.Origin{}, errors.New("X-Broker-API-Originating-Identity: the decoded value is not a JSON object")
	}
	if !utf8.Valid(raw) || holdsNUL(obj) {
		return store.Origin{}, errors.New("X-Broker-API-Originating-Identity: the decoded value must be UTF-8 JSON without NUL characters")
	}
	return store.Origin{Platform: platform, Identity: raw}, nil
}

// origin is the request's decoded originating identity; the HTTP layer has
// already refused malformed ones, so a failure here records nothing.
func origin(ctx context.Context) store.Origin {
	header, _ := ctx.Value(middlewares.OriginatingIdentityKey).(string)
	o, err := ParseOriginatingIdentity(header)
	if err != nil {
		return store.Origin{}
	}
	return o
}

// holdsNUL reports whether a decoded JSON value has U+0000 in a string or
// key: PostgreSQL jsonb cannot store it.
func holdsNUL(v any) bool {
	switch v := v.(type) {
	case string:
		return strings.ContainsRune(v, 0)
	case []any:
		for _, e := range v {
			if holdsNUL(e) {
				return true
			}
		}
	case map[string]any:
		for k, e := range v {
			if strings.ContainsRune(k, 0) || holdsNUL(e) {
				return true
			}
		}
	}
	return false
}
