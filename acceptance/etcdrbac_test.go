package acceptance

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/pgbroker/pgbroker/naming"
)

// TestEtcdRefusesOneInstancesPatroniOnAnothersKeys: a Business instance's
// Patroni logs in to etcd (TLS only, authentication on) as its own user
// pg-<short>, whose password is item etcd_password of the node job's
// Variable. That credential reads the instance's own keys (Patroni's leader
// key among them) and is refused, with etcd's permission error, on another
// instance's keys and on the whole /pgbroker/ namespace, for reading and
// writing; a request without a token, and one over plain HTTP, get nothing.
// It may watch its own keys (Patroni keeps its view of the cluster by a
// watch) and not another's: etcd cancels that watch, which Patroni would
// not log. Patroni itself ran on that role alone: its log shows it
// authenticating and no permission error. Deprovisioning deletes the user.
func TestEtcdRefusesOneInstancesPatroniOnAnothersKeys(t *testing.T) {
	b := newBroker(t)
	c := b.client()
	id := uuid.NewString()
	provisionWithin(t, c, id, businessPlan, 5*time.Minute)
	short := naming.ShortID(id)
	deprovisioned := false
	defer func() {
		if !deprovisioned {
			deprovision(t, c, id, businessPlan)
		}
	}()
	// Another instance's keys (as its Patroni would have written them).
	other := "/pgbroker/pg-" + strings.Repeat("f", len(short)) + "/"
	t.Cleanup(func() { _, _ = etcdDeletePrefix(other) })
	if err := etcdPut(other+"leader", "node-0"); err != nil {
		t.Fatal(err)
	}

	scope := "pg-" + short
	// Written below only if etcd wrongly allows it.
	t.Cleanup(func() { _, _ = etcdDeletePrefix("/pgbroker/" + scope) })
	password := nodesVariable(t, short)["etcd_password"]
	if len(password) < 32 {
		t.Fatalf("etcd_password of the node job's Variable has %d characters, want 32 or more", len(password))
	}
	token, err := etcdLogin(scope, password)
	if err != nil {
		t.Fatalf("instance's etcd user: %v", err)
	}
	own := "/pgbroker/" + scope + "/"
	keys := etcdRangeKeys(t, etcdRequestOK(t, "/v3/kv/range", token, prefixBody(own, true)))
	if !slices.Contains(keys, own+"leader") {
		t.Errorf("own prefix read as %s: keys %v, want Patroni's %sleader", scope, keys, own)
	}

	for what, req := range map[string]struct {
		path string
		body map[string]any
	}{
		"read another instance's keys":   {"/v3/kv/range", prefixBody(other, false)},
		"write another instance's key":   {"/v3/kv/put", keyValue(other+"leader", "node-1")},
		"delete another instance's keys": {"/v3/kv/deleterange", prefixBody(other, false)},
		"read the whole namespace":       {"/v3/kv/range", prefixBody("/pgbroker/", true)},
		"write beside the instances":     {"/v3/kv/put", keyValue("/pgbroker/"+scope, "x")},
		"read outside the namespace":     {"/v3/kv/range", prefixBody("/", true)},
	} {
		a, err := etcdRequest(etcdURL("https"), req.path, token, req.body)
		if err != nil {
			t.Fatalf("%s as %s: %v", what, scope, err)
		}
		if a.Status != http.StatusForbidden || !strings.Contains(string(a.Body), "permission denied") {
			t.Errorf("%s as %s: %s, want 403 permission denied", what, scope, a)
		}
	}
	var kept struct {
		Kvs []struct {
			Value string `json:"value"`
		} `json:"kvs"`
	}
	if err := etcdAsRoot("/v3/kv/range", keyValue(other+"leader", ""), &kept); err != nil || len(kept.Kvs) != 1 ||
		kept.Kvs[0].Value != base64.StdEncoding.EncodeToString([]byte("node-0")) {
		t.Errorf("the other instance's leader key after the refused writes: %+v, %v; want node-0", kept, err)
	}

	if w := etcdWatch(t, token, own); !w.Created || w.Canceled {
		t.Errorf("watch of its own keys as %s: %+v, want created and not canceled", scope, w)
	}
	if w := etcdWatch(t, token, other); !w.Canceled || !strings.Contains(w.CancelReason, "permission denied") {
		t.Errorf("watch of another instance's keys as %s: %+v, want canceled for permission denied", scope, w)
	}

	if a, err := etcdRequest(etcdURL("https"), "/v3/kv/range", "", prefixBody(own, true)); err != nil || a.Status == http.StatusOK {
		t.Errorf("range without a token: %v %v, want a refusal", a, err)
	}
	if a, err := etcdRequest(etcdURL("http"), "/v3/kv/range", token, prefixBody(own, true)); err == nil && a.Status == http.StatusOK {
		t.Errorf("range over plain HTTP answered %s, want no answer or a refusal", a)
	}
	if _, err := etcdLogin(scope, password+"x"); err == nil {
		t.Errorf("%s logged in with a wrong password", scope)
	}

	logs := nodeLogs(t, short)
	if !strings.Contains(logs, "Trying to authenticate on Etcd") {
		t.Errorf("Patroni's log does not show it authenticating to etcd:\n%s", tail(logs, 40))
	}
	for _, bad := range []string{"permission denied", "PermissionDenied", "Invalid auth token", "InvalidAuthToken", "AuthFailed", "UserEmpty",
		"watchprefix failed", "KVCache.run", "refresh_lease"} {
		if strings.Contains(logs, bad) {
			t.Errorf("Patroni's log holds %q: its role lacks something it needs:\n%s", bad, tail(logs, 40))
		}
	}

	deprovision(t, c, id, businessPlan)
	deprovisioned = true
	if _, err := etcdLogin(scope, password); err == nil {
		t.Errorf("%s still logs in to etcd after deprovision", scope)
	}
	if users, err := etcdUsers(); err != nil || slices.Contains(users, scope) {
		t.Errorf("etcd users after deprovision: %v (%v), want no %s", users, err, scope)
	}
}

// etcdWatchAnswer is the first answer of etcd to a watch's creation.
type etcdWatchAnswer struct {
	Created      bool   `json:"created"`
	Canceled     bool   `json:"canceled"`
	CancelReason string `json:"cancel_reason"`
}

// etcdWatch opens a watch of every key under prefix as token (POST
// /v3/watch, a stream of JSON objects) and returns etcd's first answer.
func etcdWatch(t *testing.T, token, prefix string) etcdWatchAnswer {
	t.Helper()
	client, err := etcdHTTPS()
	if err != nil {
		t.Fatal(err)
	}
	r := prefixBody(prefix, false)
	delete(r, "keys_only")
	body, _ := json.Marshal(map[string]any{"create_request": r})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, etcdURL("https")+"/v3/watch", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", token)
	resp, err := client.Do(req)
	if err != nil {
		t.Fatalf("watch %s: %v", prefix, err)
	}
	defer resp.Body.Close()
	var first struct {
		Result etcdWatchAnswer `json:"result"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&first); err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("watch %s: %s, %v", prefix, resp.Status, err)
	}
	return first.Result
}

// nodesVariable returns the items of instance short's node job Variable.
func nodesVariable(t *testing.T, short string) map[string]string {
	t.Helper()
	v, _, err := nomadClient(t).Variables().Read(naming.NodesSecretPath(short), nil)
	if err != nil {
		t.Fatalf("read %s: %v", naming.NodesSecretPath(short), err)
	}
	return v.Items
}

// prefixBody is the etcd key range of every key under prefix (keys only when keysOnly).
func prefixBody(prefix string, keysOnly bool) map[string]any {
	end := []byte(prefix)
	end[len(end)-1]++
	return map[string]any{"key": base64.StdEncoding.EncodeToString([]byte(prefix)),
		"range_end": base64.StdEncoding.EncodeToString(end), "keys_only": keysOnly}
}

// keyValue is a put of key = value (a range of the one key, value ignored).
func keyValue(key, value string) map[string]any {
	return map[string]any{"key": base64.StdEncoding.EncodeToString([]byte(key)), "value": base64.StdEncoding.EncodeToString([]byte(value))}
}

// etcdRequestOK is etcdRequest to the stack's etcd over TLS that must answer 200.
func etcdRequestOK(t *testing.T, path, token string, body any) etcdAnswer {
	t.Helper()
	a, err := etcdRequest(etcdURL("https"), path, token, body)
	if err != nil || a.Status != http.StatusOK {
		t.Fatalf("etcd %s: %v %v", path, a, err)
	}
	return a
}

// etcdRangeKeys decodes the keys of a range answer.
func etcdRangeKeys(t *testing.T, a etcdAnswer) []string {
	t.Helper()
	var out struct {
		Kvs []struct {
			Key string `json:"key"`
		} `json:"kvs"`
	}
	if err := json.Unmarshal(a.Body, &out); err != nil {
		t.Fatalf("decode range answer %s: %v", a, err)
	}
	var keys []string
	for _, kv := range out.Kvs {
		k, _ := base64.StdEncoding.DecodeString(kv.Key)
		keys = append(keys, string(k))
	}
	return keys
}

// nodeLogs returns the task logs (Nomad's alloc/logs) of instance short's
// running node allocations: Patroni's log is the postgres task's stderr.
func nodeLogs(t *testing.T, short string) string {
	t.Helper()
	c := nomadClient(t)
	var b strings.Builder
	for _, stub := range runningAllocs(t, naming.NodesJobID(short)) {
		alloc, _, err := c.Allocations().Info(stub.ID, nil)
		if err != nil {
			t.Fatal(err)
		}
		files, _, err := c.AllocFS().List(alloc, "alloc/logs", nil)
		if err != nil {
			t.Fatal(err)
		}
		for _, f := range files {
			if f.IsDir || !strings.HasPrefix(f.Name, "postgres.std") {
				continue
			}
			rc, err := c.AllocFS().Cat(alloc, "alloc/logs/"+f.Name, nil)
			if err != nil {
				t.Fatal(err)
			}
			out, _ := io.ReadAll(io.LimitReader(rc, 8<<20))
			rc.Close()
			b.Write(out)
		}
	}
	return b.String()
}
