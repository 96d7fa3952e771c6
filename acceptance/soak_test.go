package acceptance

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/url"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/pgbroker/pgbroker/catalog"
	"github.com/pgbroker/pgbroker/naming"
)

const (
	soakRequests = 10_000           // requests sent, exactly, unless the time limit comes first
	soakWorkers  = 4                // goroutines sending them
	soakLimit    = 3 * time.Minute  // stop sending after this even if not done
	soakSeed     = 0x5eed_0f_50a6   // the PRNG seed: the same requests every run
	soakBodyMax  = 1 << 20          // the broker's default PGBROKER_MAX_REQUEST_BODY_SIZE
	soakTimeout  = 30 * time.Second // one request
)

// Ids of the two instances the soak finds in the state database: one whose
// provisioning is in progress, one deprovisioned. Requests on them reach the
// broker's checks on a real instance without being able to change anything.
const (
	soakBusyID = "soak-instance-provisioning"
	soakGoneID = "soak-instance-deprovisioned"
)

// TestSoakMalformedRequestsChangeNothing sends 10,000 malformed or refused
// requests from a few goroutines to a real broker on 127.0.0.1: bad JSON,
// bodies over the 1 MiB limit, wrong types for every field, unicode and
// path-trick ids, random methods and query strings, missing or wrong
// credentials and version headers, invalid originating identities. They come
// from a seeded PRNG, so every run sends the same ones, and none of them is a
// provision that could succeed. No answer may be 5xx, the broker must still
// answer /healthz afterwards, and the state database must be as it was.
func TestSoakMalformedRequestsChangeNothing(t *testing.T) {
	b := newBroker(t)
	target, err := url.Parse(b.url)
	if err != nil || target.Hostname() != "127.0.0.1" {
		t.Fatalf("the soak only talks to loopback, not %q", b.url)
	}
	cat, err := catalog.Default()
	if err != nil {
		t.Fatal(err)
	}
	seedSoakInstances(t, b)
	soakShorts := []string{naming.ShortID(soakBusyID), naming.ShortID(soakGoneID)}
	before := stateSnapshot(t, b, soakShorts...)

	transport := &http.Transport{MaxIdleConns: soakWorkers, MaxIdleConnsPerHost: soakWorkers, DisableCompression: true}
	defer transport.CloseIdleConnections()
	client := &http.Client{
		Transport:     transport,
		Timeout:       soakTimeout,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	big := bytes.Repeat([]byte("x"), soakBodyMax+1)

	ctx, cancel := context.WithTimeout(context.Background(), soakLimit)
	defer cancel()
	var (
		next      atomic.Int64
		mu        sync.Mutex
		codes     = map[int]int{}
		byKind    = map[string]map[int]int{}
		latencies = make([]time.Duration, 0, soakRequests)
		failures  []string // the first 20
		failed    int
		resets    int
	)
	fail := func(format string, args ...any) {
		mu.Lock()
		defer mu.Unlock()
		failed++
		if len(failures) < 20 {
			failures = append(failures, fmt.Sprintf(format, args...))
		}
	}
	start := time.Now()
	var wg sync.WaitGroup
	for range soakWorkers {
		wg.Go(func() {
			for ctx.Err() == nil {
				i := next.Add(1) - 1
				if i >= soakRequests {
					return
				}
				s := newSoakRequest(rand.New(rand.NewPCG(soakSeed, uint64(i))), big)
				if s.couldProvision(cat) {
					fail("request %d could provision (a generator bug): %s", i, s)
					continue
				}
				req, err := s.build(ctx, b.url)
				if err != nil {
					fail("request %d: build %s: %v", i, s, err)
					continue
				}
				sent := time.Now()
				resp, err := client.Do(req)
				took := time.Since(sent)
				if err != nil {
					if ctx.Err() != nil {
						return
					}
					// A broker may answer 413 before reading a body over the
					// limit and close the connection; the client then sees the
					// reset instead of the answer.
					if s.huge {
						mu.Lock()
						resets++
						mu.Unlock()
						continue
					}
					fail("request %d: %s: %v", i, s, err)
					continue
				}
				_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<20))
				resp.Body.Close()
				if resp.StatusCode >= 500 {
					fail("request %d: %s: status %d", i, s, resp.StatusCode)
				}
				mu.Lock()
				codes[resp.StatusCode]++
				if byKind[s.kind] == nil {
					byKind[s.kind] = map[int]int{}
				}
				byKind[s.kind][resp.StatusCode]++
				latencies = append(latencies, took)
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	elapsed := time.Since(start)

	sent := min(int(next.Load()), soakRequests)
	sort.Slice(latencies, func(i, j int) bool { return latencies[i] < latencies[j] })
	t.Logf("soak: %d requests in %.1f s from %d goroutines; status %s; %d connections reset on bodies over the limit; latency p50 %s p99 %s",
		sent, elapsed.Seconds(), soakWorkers, formatCodes(codes), resets, percentile(latencies, 50), percentile(latencies, 99))
	for _, g := range soakGenerators {
		t.Logf("  %-12s %s", g.kind, formatCodes(byKind[g.kind]))
	}
	if sent < soakRequests {
		t.Logf("soak: stopped at the %s limit after %d of %d requests", soakLimit, sent, soakRequests)
	}
	for _, f := range failures {
		t.Error(f)
	}
	if failed > len(failures) {
		t.Errorf("... %d failed requests in all, the first %d above", failed, len(failures))
	}

	select {
	case <-b.done:
		t.Fatalf("the broker exited during the soak")
	default:
	}
	resp, err := http.Get(b.url + "/healthz")
	if err != nil {
		t.Fatalf("/healthz after the soak: %v", err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("/healthz after the soak: %d", resp.StatusCode)
	}
	if logs := b.logs.String(); strings.Contains(logs, "panic serving") {
		t.Errorf("the broker recovered from a panic:\n%s", tail(logs[strings.Index(logs, "panic serving"):], 40))
	}
	if after := stateSnapshot(t, b, soakShorts...); after != before {
		t.Errorf("state changed:\n%s", diffLines(before, after))
	}
}

// seedSoakInstances records soakBusyID (provisioning in progress) and
// soakGoneID (deprovisioned) directly in the broker's state database.
func seedSoakInstances(t *testing.T, b *broker) {
	t.Helper()
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, b.stateDB)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	_, err = conn.Exec(ctx, `
		INSERT INTO instances (id, short_id, service_id, plan_id, organization_guid, space_guid, deprovisioned_at)
		VALUES ($1, substr(encode(sha256(convert_to($1, 'UTF8')), 'hex'), 1, 12), 'postgresql', 'postgresql-sandbox', 'org', 'space', NULL),
		       ($2, substr(encode(sha256(convert_to($2, 'UTF8')), 'hex'), 1, 12), 'postgresql', 'postgresql-sandbox', 'org', 'space', now())`,
		soakBusyID, soakGoneID)
	if err != nil {
		t.Fatalf("record the soak's instances: %v", err)
	}
	_, err = conn.Exec(ctx, `
		INSERT INTO operations (id, instance_id, kind, state, description, plan_id, finished_at)
		VALUES ('soak-op-busy', $1, 'provision', 'in progress', 'starting node 1 of 1', 'postgresql-sandbox', NULL),
		       ('soak-op-gone-1', $2, 'provision', 'succeeded', 'ready', 'postgresql-sandbox', now()),
		       ('soak-op-gone-2', $2, 'deprovision', 'succeeded', 'deprovisioned', 'postgresql-sandbox', now())`,
		soakBusyID, soakGoneID)
	if err != nil {
		t.Fatalf("record the soak's instances: %v", err)
	}
	// Registered after newBroker's, so it runs first: the busy instance has
	// no job behind it, and removeInstances would wait its whole limit
	// (5 minutes) for a deprovision that cannot finish.
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		conn, err := pgx.Connect(ctx, b.stateDB)
		if err != nil {
			t.Errorf("retire the soak's instances: %v", err)
			return
		}
		defer conn.Close(ctx)
		_, err = conn.Exec(ctx, `UPDATE operations SET state = 'failed', finished_at = now() WHERE id = 'soak-op-busy'`)
		if err == nil {
			_, err = conn.Exec(ctx, `UPDATE instances SET deprovisioned_at = now() WHERE id = $1`, soakBusyID)
		}
		if err != nil {
			t.Errorf("retire the soak's instances: %v", err)
		}
	})
}

// soakRequest is one generated request.
type soakRequest struct {
	kind    string // which generator made it
	method  string
	path    string // as it goes on the wire: escaped, query included
	body    []byte
	chunked bool // send the body without Content-Length
	huge    bool // the body is over the broker's limit
	header  map[string]string
}

func (s soakRequest) String() string {
	return fmt.Sprintf("[%s] %s %.200s (%d-byte body %.120q, headers %q)", s.kind, s.method, s.path, len(s.body), s.body, s.header)
}

func (s soakRequest) build(ctx context.Context, base string) (*http.Request, error) {
	var body io.Reader = bytes.NewReader(s.body)
	if s.chunked {
		body = io.MultiReader(bytes.NewReader(s.body)) // hides the length: chunked encoding
	}
	req, err := http.NewRequestWithContext(ctx, s.method, base+"/", body)
	if err != nil {
		return nil, err
	}
	u, err := url.ParseRequestURI(s.path)
	if err != nil {
		return nil, err
	}
	req.URL.Path, req.URL.RawPath, req.URL.RawQuery = u.Path, u.RawPath, u.RawQuery
	if len(s.body) == 0 {
		req.Body, req.ContentLength = http.NoBody, 0
	}
	req.SetBasicAuth(brokerUser, brokerPassword)
	req.Header.Set("X-Broker-API-Version", "2.17")
	req.Header.Set("Content-Type", "application/json")
	for k, v := range s.header {
		if v == "" {
			req.Header.Del(k)
		} else {
			req.Header.Set(k, v)
		}
	}
	return req, nil
}

// couldProvision reports whether the broker might accept s as a provision:
// a PUT with accepts_incomplete=true whose body's first JSON value (what
// brokerapi decodes) names a plan of the catalog, whatever the path. The soak
// never sends one.
func (s soakRequest) couldProvision(cat *catalog.Catalog) bool {
	u, err := url.ParseRequestURI(s.path)
	if err != nil || s.method != http.MethodPut || u.Query().Get("accepts_incomplete") != "true" {
		return false
	}
	var d struct {
		PlanID string `json:"plan_id"`
	}
	if err := json.NewDecoder(bytes.NewReader(s.body)).Decode(&d); err != nil {
		return false
	}
	_, _, ok := cat.Plan(d.PlanID)
	return ok
}

// soakGenerators make one kind of malformed or refused request each.
var soakGenerators = []struct {
	kind   string
	weight int
	gen    func(r *rand.Rand, s *soakRequest, big []byte)
}{
	{"bad-json", 16, genBadJSON},
	{"wrong-types", 16, genWrongTypes},
	{"invalid-plan", 10, genInvalidPlan},
	{"refused-plan", 6, genRefusedPlan},
	{"huge-body", 2, genHugeBody},
	{"path-trick", 14, genPathTrick},
	{"method", 8, genMethod},
	{"query", 10, genQuery},
	{"auth", 8, genAuth},
	{"version", 8, genVersion},
	{"identity", 8, genIdentity},
}

func newSoakRequest(r *rand.Rand, big []byte) soakRequest {
	total := 0
	for _, g := range soakGenerators {
		total += g.weight
	}
	n := r.IntN(total)
	for _, g := range soakGenerators {
		if n < g.weight {
			s := soakRequest{kind: g.kind, header: map[string]string{}}
			g.gen(r, &s, big)
			return s
		}
		n -= g.weight
	}
	panic("unreachable")
}

func pick[T any](r *rand.Rand, from ...T) T { return from[r.IntN(len(from))] }

// soakID is an instance or binding id for a path, escaped: one of the two
// seeded instances, a fresh one, or a trick.
func soakID(r *rand.Rand) string {
	switch r.IntN(5) {
	case 0, 1:
		return pick(r, soakBusyID, soakGoneID)
	case 2, 3:
		return fmt.Sprintf("soak-%08x", r.Uint32())
	default:
		return trickID(r)
	}
}

// trickID is an escaped path segment meant to confuse routing or storage.
func trickID(r *rand.Rand) string {
	tricks := []func() string{
		func() string { return url.PathEscape(randomUnicode(r, 1+r.IntN(40))) },
		func() string { return randomUnicode(r, 1+r.IntN(20)) }, // raw, the client escapes it
		func() string { return ".." },
		func() string { return "." },
		func() string { return "%2e%2e" },
		func() string { return "a%2Fb" },
		func() string { return "%2F" },
		func() string { return "..%2F..%2Fhealthz" },
		func() string { return "a%5Cb" },
		func() string { return "%25" },
		func() string { return "%20" },
		func() string { return "a;b=c" },
		func() string { return "%3F" },
		func() string { return "%23x" },
		func() string { return strings.Repeat("x", 1000+r.IntN(4000)) },
		func() string { return strings.Repeat(url.PathEscape("ü"), 2000+r.IntN(20000)) },
		func() string { return strings.Repeat("a", 70_000) }, // over the header limit: 431
		func() string { return soakBusyID + "%20" },
		func() string { return url.PathEscape(soakBusyID + "\u200b") },
		func() string { return strings.ToUpper(soakGoneID) },
		// Not UTF-8 text or holding NUL: PostgreSQL text refuses them (once 500s).
		func() string { return "%00" },
		func() string { return "a%00b" },
		func() string { return "%FF%FE" },
		func() string { return "%C3" },
		func() string { return "%ED%A0%80" }, // a UTF-16 surrogate, not UTF-8
	}
	return pick(r, tricks...)()
}

func randomUnicode(r *rand.Rand, n int) string {
	ranges := [][2]rune{{0x21, 0x7e}, {0xa0, 0x24f}, {0x391, 0x3c9}, {0x400, 0x4ff}, {0x4e00, 0x4fff}, {0x1f600, 0x1f64f}, {0x202a, 0x202e}, {0xfe00, 0xfe0f}}
	var sb strings.Builder
	for range n {
		rg := ranges[r.IntN(len(ranges))]
		c := rg[0] + rune(r.IntN(int(rg[1]-rg[0]+1)))
		if c == '?' || c == '#' || c == '%' || c == '/' {
			c = '_'
		}
		sb.WriteRune(c)
	}
	return sb.String()
}

func instancePath(r *rand.Rand) string { return "/v2/service_instances/" + soakID(r) }
func bindingPath(r *rand.Rand) string {
	return "/v2/service_instances/" + soakID(r) + "/service_bindings/" + soakID(r)
}

// writePath is the path and method of a request that carries a body.
func writePath(r *rand.Rand, s *soakRequest) {
	switch r.IntN(3) {
	case 0:
		s.method, s.path = http.MethodPut, instancePath(r)
	case 1:
		s.method, s.path = http.MethodPatch, instancePath(r)
	default:
		s.method, s.path = http.MethodPut, bindingPath(r)
	}
	s.path += pick(r, "?accepts_incomplete=true", "", "?accepts_incomplete=false", "?accepts_incomplete=true&accepts_incomplete=false")
}

// invalidPlanID is never a plan id of the catalog.
func invalidPlanID(r *rand.Rand) string {
	return pick(r, "postgresql-huge", "postgresql-sandbox ", " postgresql-sandbox", "POSTGRESQL-SANDBOX",
		"postgresql-starter-513", "postgresql-business", "postgresql-sandbox\u200b", "postgresql-ѕandbox", "",
		"postgresql-starter-512/../postgresql-sandbox", "*", strings.Repeat("p", 5000), randomUnicode(r, 12))
}

// provisionLike is a provision body that is well-formed but names no plan of
// the catalog.
func provisionLike(r *rand.Rand) map[string]any {
	return map[string]any{
		"service_id": pick(r, "postgresql", "postgres", "", "mysql"), "plan_id": invalidPlanID(r),
		"organization_guid": "org-soak", "space_guid": "space-soak",
		"context":    map[string]any{"platform": "cloudfoundry"},
		"parameters": pick[any](r, map[string]any{}, map[string]any{"shoe_size": 42}, nil),
	}
}

func mustJSON(v any) []byte {
	raw, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return raw
}

func genBadJSON(r *rand.Rand, s *soakRequest, _ []byte) {
	writePath(r, s)
	valid := mustJSON(provisionLike(r))
	switch r.IntN(12) {
	case 0:
		s.body = valid[:r.IntN(len(valid))] // truncated
	case 1:
		s.body = []byte(pick(r, `[]`, `[1,2]`, `"x"`, `1`, `-0`, `1e400`, `true`, `null`, `[{}]`))
	case 2:
		s.body = append(append([]byte{}, valid...), pick(r, `{}`, `]`, `}`, ` x`, `,`, `[`, `"`, "\x00")...) // more after the object
	case 3:
		s.body = nil
	case 4:
		b := append([]byte{}, valid...)
		for range 1 + r.IntN(4) {
			b[r.IntN(len(b))] = byte(r.IntN(256)) // flipped bytes
		}
		s.body = b
	case 5:
		b := make([]byte, 1+r.IntN(512))
		for i := range b {
			b[i] = byte(r.IntN(256))
		}
		s.body = b
	case 6:
		s.body = []byte(strings.Repeat("[", 1+r.IntN(20000)) + strings.Repeat("]", r.IntN(20000)))
	case 7:
		s.body = []byte(`{"service_id":"postgresql","plan_id":` + strings.Repeat(`{"a":`, 5000) + `1` + strings.Repeat(`}`, 4999))
	case 8:
		s.body = []byte("\ufeff" + string(valid)) // byte order mark
	case 9:
		s.body = []byte(`{'service_id': 'postgresql', plan_id: "x"}`)
	case 10:
		s.body = []byte(`{"service_id":"postgresql","plan_id":"x",}`)
	default:
		s.body = []byte(`{"service_id":"postgresql","plan_id":"x"` + strings.Repeat(" ", r.IntN(100)) + "\n\t\r")
	}
}

// wrongTypeValue is a JSON value of a type no OSB field has where it goes.
func wrongTypeValue(r *rand.Rand, wantString bool) any {
	if wantString {
		return pick[any](r, 42, -1.5, 1e300, true, false, nil, []any{}, []any{"postgresql"}, map[string]any{}, map[string]any{"id": "x"})
	}
	return pick[any](r, "x", "", 42, true, []any{1}, "{}", "null")
}

func genWrongTypes(r *rand.Rand, s *soakRequest, _ []byte) {
	writePath(r, s)
	body := provisionLike(r)
	stringFields := []string{"service_id", "plan_id", "organization_guid", "space_guid", "app_guid"}
	objectFields := []string{"parameters", "context", "maintenance_info", "bind_resource", "previous_values"}
	for range 1 + r.IntN(4) {
		if r.IntN(2) == 0 {
			body[pick(r, stringFields...)] = wrongTypeValue(r, true)
		} else {
			body[pick(r, objectFields...)] = wrongTypeValue(r, false)
		}
	}
	if _, ok := body["plan_id"].(string); ok {
		body["plan_id"] = invalidPlanID(r)
	}
	if r.IntN(4) == 0 {
		body["maintenance_info"] = map[string]any{"version": wrongTypeValue(r, true)}
	}
	if r.IntN(4) == 0 {
		body["bind_resource"] = map[string]any{"app_guid": wrongTypeValue(r, true), "route": 7}
	}
	s.body = mustJSON(body)
}

func genInvalidPlan(r *rand.Rand, s *soakRequest, _ []byte) {
	s.method, s.path = http.MethodPut, instancePath(r)+"?accepts_incomplete=true"
	if r.IntN(3) == 0 {
		s.method = http.MethodPatch
	}
	s.body = mustJSON(provisionLike(r))
}

// genRefusedPlan sends a provision for a plan of the catalog without
// accepts_incomplete=true, which the broker refuses (422) before anything
// else, with a body that is odd in one more way.
func genRefusedPlan(r *rand.Rand, s *soakRequest, _ []byte) {
	s.method, s.path = http.MethodPut, instancePath(r)+pick(r, "", "?accepts_incomplete=false", "?accepts_incomplete=TRUE", "?accepts_incomplete=1")
	body := provisionLike(r)
	body["service_id"], body["plan_id"] = "postgresql", pick(r, "postgresql-sandbox", "postgresql-starter-512", "postgresql-business-512")
	odd := []func(){
		func() { body["parameters"] = map[string]any{"shoe_size": 42} },
		func() { delete(body, "organization_guid") },
		func() { body["maintenance_info"] = map[string]any{"version": "0.0.1"} },
		func() {
			body["context"] = map[string]any{"platform": randomUnicode(r, 30), "nested": []any{[]any{[]any{map[string]any{}}}}}
		},
		func() { body["parameters"] = json.RawMessage(strings.Repeat("[", 500) + strings.Repeat("]", 500)) },
		func() {
			body["context"] = json.RawMessage(`{"platform":"cloudfoundry","a":1e-400,"b":-0,"c":123456789012345678901234567890}`)
		},
		func() { body["organization_guid"] = "org\u0000" },
		func() { body["space_guid"] = json.RawMessage(`"space\ud800"`) },
		// Beyond float64: lager's log redaction once panicked on these.
		func() { body["parameters"] = json.RawMessage(`{"a":1e400}`) },
		func() { body["context"] = json.RawMessage(`{"platform":"cloudfoundry","big":-1e1000000}`) },
	}
	pick(r, odd...)()
	s.body = mustJSON(body)
	if r.IntN(4) == 0 {
		s.body = append(s.body, pick(r, "]", "}", " ]")...) // more after the object
	}
}

func genHugeBody(r *rand.Rand, s *soakRequest, big []byte) {
	writePath(r, s)
	s.huge, s.chunked = true, r.IntN(2) == 0
	body := make([]byte, 0, len(big)+64)
	body = append(body, `{"service_id":"postgresql","plan_id":"postgresql-huge","padding":"`...)
	body = append(body, big...)
	s.body = append(body, `"}`...)
}

var soakRoutes = []func(r *rand.Rand) string{
	func(*rand.Rand) string { return "/v2/catalog" },
	instancePath,
	func(r *rand.Rand) string { return instancePath(r) + "/last_operation" },
	bindingPath,
	func(r *rand.Rand) string { return bindingPath(r) + "/last_operation" },
	func(r *rand.Rand) string { return "/v2/" + trickID(r) },
	func(r *rand.Rand) string { return "/" + trickID(r) },
	func(*rand.Rand) string { return "/v2" },
	func(*rand.Rand) string { return "/v2/service_instances/" },
	func(*rand.Rand) string { return "//v2//catalog" },
}

func genPathTrick(r *rand.Rand, s *soakRequest, _ []byte) {
	s.method = pick(r, http.MethodGet, http.MethodGet, http.MethodDelete, http.MethodPatch, http.MethodPut)
	switch r.IntN(4) {
	case 0:
		s.path = "/v2/service_instances/" + trickID(r)
	case 1:
		s.path = "/v2/service_instances/" + soakID(r) + "/service_bindings/" + trickID(r)
	case 2:
		s.path = "/v2/service_instances/" + trickID(r) + "/last_operation"
	default:
		s.path = pick(r, soakRoutes...)(r)
	}
	if s.method == http.MethodPut || s.method == http.MethodPatch {
		s.body = mustJSON(provisionLike(r))
	}
	if r.IntN(2) == 0 {
		s.path += "?accepts_incomplete=true&service_id=postgresql&plan_id=" + url.QueryEscape(invalidPlanID(r))
	}
}

func genMethod(r *rand.Rand, s *soakRequest, _ []byte) {
	s.method = pick(r, http.MethodPost, http.MethodHead, http.MethodOptions, http.MethodTrace, http.MethodConnect,
		"PROPFIND", "MKCOL", "get", "Put", "PURGE", "X-"+strings.ToUpper(fmt.Sprintf("%x", r.Uint32())))
	s.path = pick(r, soakRoutes...)(r)
	if r.IntN(2) == 0 {
		s.body = mustJSON(provisionLike(r))
	}
}

func soakQuery(r *rand.Rand) string {
	keys := []string{"accepts_incomplete", "operation", "service_id", "plan_id", "", "x"}
	values := []func() string{
		func() string { return pick(r, "true", "TRUE", "1", "yes", "false", "", "true ") },
		func() string { return pick(r, "soak-op-busy", "soak-op-gone-2", "not-an-operation") },
		func() string { return url.QueryEscape(randomUnicode(r, 1+r.IntN(30))) },
		func() string { return strings.Repeat("o", 1000+r.IntN(8000)) },
		func() string { return pick(r, "%zz", "%", "%2", "a+b", "a%20b", "%26", "%3D") },
		func() string { return url.QueryEscape(invalidPlanID(r)) },
		func() string { return pick(r, "%00", "%FF", "a%00b") }, // not text: once 500s
	}
	var parts []string
	for range 1 + r.IntN(5) {
		p := pick(r, keys...) + "=" + pick(r, values...)()
		if r.IntN(10) == 0 {
			p = pick(r, ";", "&&", "=", "==", "&=&")
		}
		parts = append(parts, p)
	}
	return strings.Join(parts, "&")
}

func genQuery(r *rand.Rand, s *soakRequest, _ []byte) {
	switch r.IntN(4) {
	case 0:
		s.method, s.path = http.MethodGet, instancePath(r)+"/last_operation"
	case 1:
		s.method, s.path = http.MethodDelete, instancePath(r)
	case 2:
		s.method, s.path = http.MethodDelete, bindingPath(r)
	default:
		s.method, s.path = http.MethodGet, bindingPath(r)+"/last_operation"
	}
	s.path += "?" + soakQuery(r)
}

// anyRoute is a request on any route, with a body where one goes.
func anyRoute(r *rand.Rand, s *soakRequest) {
	switch r.IntN(3) {
	case 0:
		s.method, s.path = http.MethodGet, pick(r, soakRoutes...)(r)
	case 1:
		writePath(r, s)
		s.body = mustJSON(provisionLike(r))
	default:
		s.method, s.path = http.MethodDelete, instancePath(r)+"?accepts_incomplete=true"
	}
}

func genAuth(r *rand.Rand, s *soakRequest, _ []byte) {
	anyRoute(r, s)
	basic := func(userPass string) string { return "Basic " + base64.StdEncoding.EncodeToString([]byte(userPass)) }
	s.header["Authorization"] = pick(r, "",
		basic(brokerUser+":wrong"), basic("wrong:"+brokerPassword), basic(brokerUser+":"), basic(":"+brokerPassword),
		basic(brokerUser), basic(brokerUser+":"+brokerPassword+" "), basic(strings.ToUpper(brokerUser)+":"+brokerPassword),
		"Basic", "Basic ", "Basic !!!", "basic "+base64.StdEncoding.EncodeToString([]byte("x:y")), "Bearer "+brokerPassword,
		"Digest username=\""+brokerUser+"\"", basic(strings.Repeat("u", 4000)+":"+strings.Repeat("p", 4000)))
}

func genVersion(r *rand.Rand, s *soakRequest, _ []byte) {
	anyRoute(r, s)
	s.header["X-Broker-API-Version"] = pick(r, "", "2.12", "2.0", "1.17", "3.0", "two", "2.", ".17", "2,17", "v2.17",
		"2.-17", "99999999999999999999.17", "2.99999999999999999999", "\t", strings.Repeat("2", 5000))
}

func genIdentity(r *rand.Rand, s *soakRequest, _ []byte) {
	anyRoute(r, s)
	enc := func(v string) string { return base64.StdEncoding.EncodeToString([]byte(v)) }
	s.header["X-Broker-API-Originating-Identity"] = pick(r,
		"cloudfoundry", "cloudfoundry ", " "+enc(`{"user_id":"u"}`), enc(`{"user_id":"u"}`), "cloudfoundry !!!",
		"cloudfoundry "+enc(`[1]`), "cloudfoundry "+enc(`null`), "cloudfoundry "+enc(`"x"`), "cloudfoundry "+enc(`{"a":`),
		"cloudfoundry "+enc(`{"a":1e400}`), "cloudfoundry "+enc(`{}`)[1:], "kubernetes "+base64.URLEncoding.EncodeToString([]byte(`{"?>":"??>"}`)),
		"cloudfoundry "+strings.Repeat("A", 8001), "cloudfoundry "+enc(`{"user_id":"u"}{}`))
}

// percentile is the p-th percentile of sorted durations, rounded to 10 µs.
func percentile(sorted []time.Duration, p int) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	i := (len(sorted)*p+99)/100 - 1
	return sorted[max(i, 0)].Round(10 * time.Microsecond)
}

func formatCodes(codes map[int]int) string {
	keys := make([]int, 0, len(codes))
	for k := range codes {
		keys = append(keys, k)
	}
	sort.Ints(keys)
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = fmt.Sprintf("%d×%d", k, codes[k])
	}
	return strings.Join(parts, " ")
}
