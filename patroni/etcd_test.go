package patroni

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// fakeEtcd stands in for etcd's v3 JSON gateway: POST /v3/kv/deleterange
// answers with the next count of deleted (0 once the list is used up), the
// way etcd 3.4 does ("deleted" a string, absent when 0).
type fakeEtcd struct {
	srv     *httptest.Server
	status  int // answer status, 200 unless set
	mu      sync.Mutex
	deleted []int
	ranges  []map[string]string // decoded key and range_end of each request
}

func newFakeEtcd(t *testing.T, deleted ...int) *fakeEtcd {
	f := &fakeEtcd{status: http.StatusOK, deleted: deleted}
	f.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		f.mu.Lock()
		defer f.mu.Unlock()
		if r.Method != http.MethodPost || r.URL.Path != "/v3/kv/deleterange" {
			http.NotFound(w, r)
			return
		}
		var req map[string]string
		if err := json.NewDecoder(r.Body).Decode(&req); err != nil {
			http.Error(w, `{"error":"bad request"}`, http.StatusBadRequest)
			return
		}
		key, _ := base64.StdEncoding.DecodeString(req["key"])
		end, _ := base64.StdEncoding.DecodeString(req["range_end"])
		f.ranges = append(f.ranges, map[string]string{"key": string(key), "range_end": string(end)})
		if f.status != http.StatusOK {
			http.Error(w, `{"error":"etcdserver: no leader","code":14}`, f.status)
			return
		}
		n := 0
		if len(f.deleted) > 0 {
			n, f.deleted = f.deleted[0], f.deleted[1:]
		}
		answer := map[string]any{"header": map[string]string{"revision": "42"}}
		if n > 0 {
			answer["deleted"] = strconv.Itoa(n)
		}
		json.NewEncoder(w).Encode(answer)
	}))
	t.Cleanup(f.srv.Close)
	return f
}

func (f *fakeEtcd) endpoint() string { return strings.TrimPrefix(f.srv.URL, "http://") }

func (f *fakeEtcd) requests() []map[string]string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]map[string]string(nil), f.ranges...)
}

func fastDCS(endpoints ...string) *DCS {
	d := NewDCS(endpoints)
	d.retry = time.Millisecond
	return d
}

func TestDeleteClusterDeletesTheScopesKeysUntilTwoRoundsFindNone(t *testing.T) {
	f := newFakeEtcd(t, 6, 0, 1, 0) // a Patroni shutting down wrote its status once more
	if err := fastDCS(f.endpoint()).DeleteCluster(context.Background(), Scope("0123456789ab")); err != nil {
		t.Fatal(err)
	}
	got := f.requests()
	if len(got) != 5 {
		t.Fatalf("%d deleterange requests, want 5 (6, 0, 1, then two empty rounds)", len(got))
	}
	for _, r := range got {
		if r["key"] != "/pgbroker/pg-0123456789ab/" || r["range_end"] != "/pgbroker/pg-0123456789ab0" {
			t.Fatalf("range %v, want every key under /pgbroker/pg-0123456789ab/ and nothing else", r)
		}
	}
}

func TestDeleteClusterFailsWhenKeysKeepComingBack(t *testing.T) {
	f := newFakeEtcd(t, 1, 1, 1, 1, 1, 1, 1, 1)
	d := fastDCS(f.endpoint())
	d.rounds = 5
	err := d.DeleteCluster(context.Background(), "pg-abc")
	if err == nil || !strings.Contains(err.Error(), "keep coming back") {
		t.Fatalf("got %v", err)
	}
	if n := len(f.requests()); n != 5 {
		t.Fatalf("%d rounds, want 5", n)
	}
}

func TestDeleteClusterTriesTheNextEndpoint(t *testing.T) {
	down := httptest.NewServer(http.NotFoundHandler())
	down.Close()
	noLeader := newFakeEtcd(t)
	noLeader.status = http.StatusServiceUnavailable
	ok := newFakeEtcd(t, 2)
	err := fastDCS(strings.TrimPrefix(down.URL, "http://"), noLeader.endpoint(), ok.endpoint()).DeleteCluster(context.Background(), "pg-abc")
	if err != nil {
		t.Fatal(err)
	}
	if n := len(ok.requests()); n != 3 {
		t.Fatalf("the answering endpoint got %d requests, want 3", n)
	}
}

func TestDeleteClusterFailsNamingEtcdsAnswer(t *testing.T) {
	f := newFakeEtcd(t)
	f.status = http.StatusServiceUnavailable
	err := fastDCS(f.endpoint()).DeleteCluster(context.Background(), "pg-abc")
	if err == nil || !strings.Contains(err.Error(), "503") || !strings.Contains(err.Error(), "no leader") ||
		!strings.Contains(err.Error(), "/pgbroker/pg-abc/") {
		t.Fatalf("got %v, want the prefix, the status and etcd's text", err)
	}
}

func TestDeleteClusterWithoutEtcdDoesNothing(t *testing.T) {
	if err := NewDCS(nil).DeleteCluster(context.Background(), "pg-abc"); err != nil {
		t.Fatal(err)
	}
}

func TestDeleteClusterStopsWithTheContext(t *testing.T) {
	f := newFakeEtcd(t, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1)
	d := NewDCS([]string{f.endpoint()}) // 500 ms between rounds
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	if err := d.DeleteCluster(ctx, "pg-abc"); err == nil || !strings.Contains(err.Error(), "deadline") {
		t.Fatalf("got %v", err)
	}
}
