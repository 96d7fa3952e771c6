package patroni

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

// fastDCS is the DCS at the fakes' endpoints, as root, trusting the fakes'
// certificate (httptest's, the same for every TLS server).
func fastDCS(endpoints ...string) *DCS {
	d := NewDCS(DCSConfig{Endpoints: endpoints, CAPEM: testCAPEM, Username: "root", Password: testRootPassword})
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
	down := httptest.NewTLSServer(http.NotFoundHandler())
	down.Close()
	noLeader := newFakeEtcd(t)
	noLeader.status = http.StatusServiceUnavailable
	ok := newFakeEtcd(t, 2)
	err := fastDCS(strings.TrimPrefix(down.URL, "https://"), noLeader.endpoint(), ok.endpoint()).DeleteCluster(context.Background(), "pg-abc")
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
	if err := NewDCS(DCSConfig{}).DeleteCluster(context.Background(), "pg-abc"); err != nil {
		t.Fatal(err)
	}
}

func TestDeleteClusterStopsWithTheContext(t *testing.T) {
	f := newFakeEtcd(t, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1)
	d := fastDCS(f.endpoint())
	d.retry = 500 * time.Millisecond
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	if err := d.DeleteCluster(ctx, "pg-abc"); err == nil || !strings.Contains(err.Error(), "deadline") {
		t.Fatalf("got %v", err)
	}
}
