package patroni

import (
	"context"
	"encoding/base64"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/pgbroker/pgbroker/pki"
)

func b64(s string) string { return base64.StdEncoding.EncodeToString([]byte(s)) }

// onlyOwnPrefix is the one permission of a cluster's role: read and write
// on every key starting with /pgbroker/<scope>/.
func onlyOwnPrefix(scope string) []etcdPermission {
	return []etcdPermission{{PermType: "READWRITE", Key: b64("/pgbroker/" + scope + "/"), RangeEnd: b64("/pgbroker/" + scope + "0")}}
}

func TestEnsureUserGrantsExactlyTheClustersPrefixAndResetsThePassword(t *testing.T) {
	f := newFakeEtcd(t)
	d := fastDCS(f.endpoint())
	for _, password := range []string{"first", "second"} {
		if err := d.EnsureUser(context.Background(), "pg-abc", password); err != nil {
			t.Fatal(err)
		}
	}
	if f.users["pg-abc"] != "second" {
		t.Errorf("password of pg-abc %q, want the last one set", f.users["pg-abc"])
	}
	if got := f.perms["pg-abc"]; !slices.Equal(got, onlyOwnPrefix("pg-abc")) {
		t.Errorf("role pg-abc grants %v, want READWRITE on /pgbroker/pg-abc/ (range end /pgbroker/pg-abc0) only", got)
	}
	if got := f.granted["pg-abc"]; !slices.Equal(got, []string{"pg-abc"}) {
		t.Errorf("user pg-abc holds roles %v, want pg-abc only", got)
	}
}

// TestEnsureUserAgainChangesNothing: on a user and role as they should be,
// EnsureUser only reads: any change to etcd's users and roles would make
// etcd refuse the running Patroni's token and its requests in flight.
func TestEnsureUserAgainChangesNothing(t *testing.T) {
	f := newFakeEtcd(t)
	d := fastDCS(f.endpoint())
	if err := d.EnsureUser(context.Background(), "pg-abc", "pw"); err != nil {
		t.Fatal(err)
	}
	f.calls = nil
	if err := d.EnsureUser(context.Background(), "pg-abc", "pw"); err != nil {
		t.Fatal(err)
	}
	for _, call := range f.calls {
		if !strings.HasSuffix(call, "/get") && !strings.HasSuffix(call, "/add") && call != "/v3/auth/authenticate" {
			t.Errorf("second EnsureUser called %s (calls %v): want reads only", call, f.calls)
		}
	}
}

// TestEnsureUserNarrowsAWiderRoleAndDropsOtherRoles: a role granted more
// than its prefix (the whole namespace) or a user given another role (root)
// is brought back to its own prefix.
func TestEnsureUserNarrowsAWiderRoleAndDropsOtherRoles(t *testing.T) {
	f := newFakeEtcd(t)
	f.users["pg-abc"] = "old"
	f.perms["pg-abc"] = []etcdPermission{{PermType: "READWRITE", Key: b64("/pgbroker/"), RangeEnd: b64("/pgbroker0")}}
	f.granted["pg-abc"] = []string{"root", "pg-abc"}
	if err := fastDCS(f.endpoint()).EnsureUser(context.Background(), "pg-abc", "new"); err != nil {
		t.Fatal(err)
	}
	if got := f.perms["pg-abc"]; !slices.Equal(got, onlyOwnPrefix("pg-abc")) {
		t.Errorf("role pg-abc grants %v, want its own prefix only", got)
	}
	if got := f.granted["pg-abc"]; !slices.Equal(got, []string{"pg-abc"}) {
		t.Errorf("user pg-abc holds roles %v, want pg-abc only", got)
	}
}

func TestDeleteClusterDeletesTheUserAndRoleAfterTheKeys(t *testing.T) {
	f := newFakeEtcd(t, 3)
	d := fastDCS(f.endpoint())
	ctx := context.Background()
	if err := d.EnsureUser(ctx, "pg-abc", "pw"); err != nil {
		t.Fatal(err)
	}
	for range 2 { // the second run finds nothing to delete
		if err := d.DeleteCluster(ctx, "pg-abc"); err != nil {
			t.Fatal(err)
		}
	}
	if _, ok := f.users["pg-abc"]; ok {
		t.Error("user pg-abc left in etcd")
	}
	if _, ok := f.perms["pg-abc"]; ok {
		t.Error("role pg-abc left in etcd")
	}
	lastKeys := slices.Index(f.calls, "/v3/auth/user/delete") - 1
	if lastKeys < 0 || f.calls[lastKeys] != "/v3/kv/deleterange" {
		t.Errorf("calls %v: want the user deleted right after the keys", f.calls)
	}
}

// TestACallReauthenticatesWhenEtcdRefusesTheToken: etcd forgets a simple
// token after 5 minutes unused (and on restart); the next call logs in
// again instead of failing.
func TestACallReauthenticatesWhenEtcdRefusesTheToken(t *testing.T) {
	f := newFakeEtcd(t)
	d := fastDCS(f.endpoint())
	ctx := context.Background()
	if err := d.EnsureUser(ctx, "pg-abc", "pw"); err != nil {
		t.Fatal(err)
	}
	f.expireTokens()
	if err := d.DeleteUser(ctx, "pg-abc"); err != nil {
		t.Fatal(err)
	}
	if n := countOf(f.calls, "/v3/auth/authenticate"); n != 2 {
		t.Errorf("%d authentications, want 2 (one per token)", n)
	}
}

func TestDCSRefusesAnEtcdItsCADoesNotVouchFor(t *testing.T) {
	f := newFakeEtcd(t)
	other, _, err := pki.NewCA("another CA", time.Hour, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	d := NewDCS(DCSConfig{Endpoints: []string{f.endpoint()}, CAPEM: string(other), Username: "root", Password: testRootPassword})
	err = d.EnsureUser(context.Background(), "pg-abc", "pw")
	if err == nil || !strings.Contains(err.Error(), "certificate") {
		t.Fatalf("got %v, want a certificate error", err)
	}
	if len(f.calls) != 0 {
		t.Fatalf("etcd got %v: the root password went to a server the CA does not vouch for", f.calls)
	}
}

func TestEtcdErrorsNeverQuoteAPassword(t *testing.T) {
	f := newFakeEtcd(t)
	f.status = http.StatusServiceUnavailable
	err := fastDCS(f.endpoint()).EnsureUser(context.Background(), "pg-abc", "cluster-secret")
	if err == nil || !strings.Contains(err.Error(), "no leader") {
		t.Fatalf("got %v, want etcd's answer", err)
	}
	for _, secret := range []string{"cluster-secret", testRootPassword} {
		if strings.Contains(err.Error(), secret) {
			t.Fatalf("error %q quotes a password", err)
		}
	}
}

func TestEnsureUserWithoutEtcdDoesNothing(t *testing.T) {
	if err := NewDCS(DCSConfig{}).EnsureUser(context.Background(), "pg-abc", "pw"); err != nil {
		t.Fatal(err)
	}
}

func countOf(list []string, s string) (n int) {
	for _, x := range list {
		if x == s {
			n++
		}
	}
	return n
}
