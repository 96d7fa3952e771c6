package broker

import (
	"encoding/base64"
	"encoding/json"
	"strings"
	"testing"
)

// FuzzParseOriginatingIdentity feeds arbitrary X-Broker-API-Originating-Identity
// values to ParseOriginatingIdentity: it never panics; an empty header is the
// zero Origin; any other success has a non-empty platform without spaces and an
// Identity that is one JSON object, which encodes back to a header parsing to
// the same Origin; an error never repeats the encoded value.
func FuzzParseOriginatingIdentity(f *testing.F) {
	enc := func(s string) string { return base64.StdEncoding.EncodeToString([]byte(s)) }
	for _, seed := range []string{
		"", " ", "cloudfoundry " + enc(`{"user_id":"683ea748-3092-4ff4-b656-39cacc4d5360"}`),
		"kubernetes " + enc(`{"username":"admin","uid":"1","groups":["a","b"],"extra":{"k":["v"]}}`),
		"cloudfoundry " + enc(`{}`), "cloudfoundry", "cloudfoundry ", " " + enc(`{}`), enc(`{}`),
		"cloudfoundry !!!", "cloudfoundry " + enc(`[1]`), "cloudfoundry " + enc(`null`), "cloudfoundry " + enc(`"x"`),
		"cloudfoundry " + enc(`{"a":1}{"b":2}`), "cloudfoundry " + enc(`{"a":`), "cloudfoundry " + enc(`{"a":1e400}`),
		"cloudfoundry " + enc(`{"a":"\u0000"}`), "cloudfoundry " + enc("{\"a\":\"\xff\"}"), "cloudfoundry " + enc(`{"\ud800":1}`),
		"cloudfoundry  " + enc(`{}`), "\tcloudfoundry\t" + enc(`{}`), "cloudfoundry " + enc(`{}`) + " extra",
		"cloudfoundry " + strings.TrimRight(enc(`{"a":1}`), "="), "cloudfoundry " + enc(`{"a":1}`) + "==",
		"cloudfoundry " + base64.URLEncoding.EncodeToString([]byte(`{"a":"???>>>"}`)), "☃ " + enc(`{}`),
		"cloudfoundry\x00 " + enc(`{}`), "cloudfoundry " + enc(strings.Repeat(`{"a":`, 100)+"1"+strings.Repeat("}", 100)),
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, header string) {
		o, err := ParseOriginatingIdentity(header)
		if err != nil {
			if o.Platform != "" || o.Identity != nil {
				t.Fatalf("%q: error %v with a non-zero Origin %+v", header, err, o)
			}
			if _, encoded, ok := strings.Cut(strings.TrimSpace(header), " "); ok {
				if encoded = strings.TrimSpace(encoded); len(encoded) >= 8 && strings.Contains(err.Error(), encoded) {
					t.Fatalf("error %q repeats the encoded identity", err)
				}
			}
			return
		}
		if header == "" {
			if o.Platform != "" || o.Identity != nil {
				t.Fatalf("empty header gave %+v, want the zero Origin", o)
			}
			return
		}
		if o.Platform == "" || strings.Contains(o.Platform, " ") {
			t.Fatalf("%q: platform %q, want one non-empty word", header, o.Platform)
		}
		var obj map[string]any
		if err := json.Unmarshal(o.Identity, &obj); err != nil || obj == nil {
			t.Fatalf("%q: identity %q is not a JSON object: %v", header, o.Identity, err)
		}
		again, err := ParseOriginatingIdentity(o.Platform + " " + base64.StdEncoding.EncodeToString(o.Identity))
		if err != nil || again.Platform != o.Platform || string(again.Identity) != string(o.Identity) {
			t.Fatalf("%q: re-encoded origin %+v parses as %+v, %v", header, o, again, err)
		}
	})
}
