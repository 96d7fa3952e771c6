package patroni

import (
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
)

const testRootPassword = "root-secret"

// testCAPEM is the certificate of httptest's TLS servers (one for all).
var testCAPEM = func() string {
	srv := httptest.NewTLSServer(http.NotFoundHandler())
	defer srv.Close()
	return string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw}))
}()

// fakeEtcd stands in for etcd 3.4's v3 JSON gateway over TLS with
// authentication on, answering as etcd does (int64 fields as strings and
// left out when 0; errors as {"error","message","code"}): user root with
// the root role; users, roles and their permissions; POST
// /v3/kv/deleterange answers with the next count of deleted (0 once the
// list is used up). Every call but authenticate needs a token it handed out.
type fakeEtcd struct {
	srv     *httptest.Server
	status  int // answer status, 200 unless set: another is etcd without a leader
	mu      sync.Mutex
	deleted []int
	ranges  []map[string]string // decoded key and range_end of each deleterange
	tokens  map[string]string   // token → user
	users   map[string]string   // user → password
	granted map[string][]string // user → roles
	perms   map[string][]etcdPermission
	calls   []string // paths called, in order
}

func newFakeEtcd(t *testing.T, deleted ...int) *fakeEtcd {
	f := &fakeEtcd{status: http.StatusOK, deleted: deleted, tokens: map[string]string{},
		users: map[string]string{"root": testRootPassword}, granted: map[string][]string{"root": {"root"}},
		perms: map[string][]etcdPermission{}}
	f.srv = httptest.NewTLSServer(http.HandlerFunc(f.serve))
	t.Cleanup(f.srv.Close)
	return f
}

func (f *fakeEtcd) endpoint() string { return strings.TrimPrefix(f.srv.URL, "https://") }

func (f *fakeEtcd) requests() []map[string]string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]map[string]string(nil), f.ranges...)
}

// expireTokens forgets every token, as etcd does after 5 minutes unused.
func (f *fakeEtcd) expireTokens() {
	f.mu.Lock()
	defer f.mu.Unlock()
	clear(f.tokens)
}

func etcdFail(w http.ResponseWriter, status, code int, message string) {
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(map[string]any{"error": "etcdserver: " + message, "message": "etcdserver: " + message, "code": code})
}

func (f *fakeEtcd) serve(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	defer f.mu.Unlock()
	var req map[string]json.RawMessage
	if r.Method != http.MethodPost || json.NewDecoder(r.Body).Decode(&req) != nil {
		http.Error(w, `{"error":"bad request"}`, http.StatusBadRequest)
		return
	}
	str := func(k string) string { var s string; json.Unmarshal(req[k], &s); return s }
	f.calls = append(f.calls, r.URL.Path)
	if r.URL.Path == "/v3/kv/deleterange" {
		key, _ := base64.StdEncoding.DecodeString(str("key"))
		end, _ := base64.StdEncoding.DecodeString(str("range_end"))
		f.ranges = append(f.ranges, map[string]string{"key": string(key), "range_end": string(end)})
	}
	if f.status != http.StatusOK {
		etcdFail(w, f.status, 14, "no leader")
		return
	}
	if r.URL.Path == "/v3/auth/authenticate" {
		if pw, ok := f.users[str("name")]; !ok || pw != str("password") {
			etcdFail(w, http.StatusBadRequest, 3, "authentication failed, invalid user ID or password")
			return
		}
		token := "token-" + strconv.Itoa(len(f.calls))
		f.tokens[token] = str("name")
		json.NewEncoder(w).Encode(map[string]string{"token": token})
		return
	}
	user, ok := f.tokens[r.Header.Get("Authorization")]
	if !ok {
		etcdFail(w, http.StatusUnauthorized, 16, "invalid auth token")
		return
	}
	if !slices.Contains(f.granted[user], "root") {
		etcdFail(w, http.StatusForbidden, 7, "permission denied")
		return
	}
	answer := map[string]any{"header": map[string]string{"revision": "42"}}
	switch r.URL.Path {
	case "/v3/kv/deleterange":
		n := 0
		if len(f.deleted) > 0 {
			n, f.deleted = f.deleted[0], f.deleted[1:]
		}
		if n > 0 {
			answer["deleted"] = strconv.Itoa(n)
		}
	case "/v3/auth/user/add":
		if _, ok := f.users[str("name")]; ok {
			etcdFail(w, http.StatusPreconditionFailed, 9, "user name already exists")
			return
		}
		f.users[str("name")] = str("password")
	case "/v3/auth/user/changepw":
		if _, ok := f.users[str("name")]; !ok {
			etcdFail(w, http.StatusPreconditionFailed, 9, "user name not found")
			return
		}
		f.users[str("name")] = str("password")
	case "/v3/auth/user/get":
		if _, ok := f.users[str("name")]; !ok {
			etcdFail(w, http.StatusPreconditionFailed, 9, "user name not found")
			return
		}
		answer["roles"] = f.granted[str("name")]
	case "/v3/auth/user/grant":
		if _, ok := f.perms[str("role")]; !ok && str("role") != "root" {
			etcdFail(w, http.StatusPreconditionFailed, 9, "role name not found")
			return
		}
		if !slices.Contains(f.granted[str("user")], str("role")) {
			f.granted[str("user")] = append(f.granted[str("user")], str("role"))
		}
	case "/v3/auth/user/revoke":
		f.granted[str("name")] = slices.DeleteFunc(f.granted[str("name")], func(r string) bool { return r == str("role") })
	case "/v3/auth/user/delete":
		if _, ok := f.users[str("name")]; !ok {
			etcdFail(w, http.StatusPreconditionFailed, 9, "user name not found")
			return
		}
		delete(f.users, str("name"))
		delete(f.granted, str("name"))
	case "/v3/auth/role/add":
		if _, ok := f.perms[str("name")]; ok {
			etcdFail(w, http.StatusPreconditionFailed, 9, "role name already exists")
			return
		}
		f.perms[str("name")] = []etcdPermission{}
	case "/v3/auth/role/grant":
		var perm etcdPermission
		json.Unmarshal(req["perm"], &perm)
		if !slices.Contains(f.perms[str("name")], perm) {
			f.perms[str("name")] = append(f.perms[str("name")], perm)
		}
	case "/v3/auth/role/get":
		if _, ok := f.perms[str("role")]; !ok {
			etcdFail(w, http.StatusPreconditionFailed, 9, "role name not found")
			return
		}
		answer["perm"] = f.perms[str("role")]
	case "/v3/auth/role/revoke":
		f.perms[str("role")] = slices.DeleteFunc(f.perms[str("role")], func(p etcdPermission) bool {
			return p.Key == str("key") && p.RangeEnd == str("range_end")
		})
	case "/v3/auth/role/delete":
		if _, ok := f.perms[str("role")]; !ok {
			etcdFail(w, http.StatusPreconditionFailed, 9, "role name not found")
			return
		}
		delete(f.perms, str("role"))
	default:
		http.NotFound(w, r)
		return
	}
	json.NewEncoder(w).Encode(answer)
}
