package patroni

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"time"
)

// Namespace is the etcd key prefix of every cluster the broker runs
// (patroni.yml "namespace" in nodes.nomad.hcl).
const Namespace = "/pgbroker/"

// Scope is the Patroni scope of an instance's cluster, short being the
// instance's short id: its keys live in etcd under Namespace + scope + "/"
// (patroni.yml "scope: pg-<instance>" in nodes.nomad.hcl).
func Scope(short string) string { return "pg-" + short }

// DCS is the etcd cluster Patroni keeps its clusters' keys in (leader lock,
// members, config, initialize, sync, status), reached through etcd's v3
// JSON gateway (POST /v3/kv/...). Safe for concurrent use.
type DCS struct {
	endpoints []string // host:port, plain HTTP
	http      *http.Client
	retry     time.Duration // between two deletions of a cluster's keys
	rounds    int           // deletions of a cluster's keys before giving up
}

// NewDCS returns the DCS reached at endpoints (host:port of etcd's client
// URLs, tried in order). With no endpoint there is no DCS: DeleteCluster
// then does nothing.
func NewDCS(endpoints []string) *DCS {
	return &DCS{endpoints: endpoints, http: &http.Client{Timeout: requestTimeout},
		retry: 500 * time.Millisecond, rounds: 40}
}

// DeleteCluster deletes the keys of the cluster scope (POST
// /v3/kv/deleterange over Namespace + scope + "/") and checks none is left:
// a Patroni still shutting down may write its last status after the first
// delete, so it deletes again every 500 ms until two rounds in a row found
// nothing, for up to 20 s. Errors when no endpoint answers 200, or keys keep
// coming back (a Patroni of the cluster still runs).
func (d *DCS) DeleteCluster(ctx context.Context, scope string) error {
	if len(d.endpoints) == 0 {
		return nil
	}
	prefix := Namespace + scope + "/"
	empty := 0
	for round := 1; ; round++ {
		n, err := d.deletePrefix(ctx, prefix)
		if err != nil {
			return fmt.Errorf("delete Patroni keys %s* from etcd: %w", prefix, err)
		}
		if n > 0 {
			empty = 0
		} else if empty++; empty == 2 {
			return nil
		}
		if round == d.rounds {
			return fmt.Errorf("Patroni keys %s* keep coming back in etcd: a Patroni of the instance still runs", prefix)
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("delete Patroni keys %s* from etcd: %w", prefix, ctx.Err())
		case <-time.After(d.retry):
		}
	}
}

// deletePrefix deletes every key starting with prefix and returns how many
// there were.
func (d *DCS) deletePrefix(ctx context.Context, prefix string) (int64, error) {
	var deleted struct {
		Deleted int64 `json:"deleted,string"` // int64 fields are strings in the gateway's JSON; absent when 0
	}
	err := d.call(ctx, "/v3/kv/deleterange", prefixRange(prefix), &deleted)
	return deleted.Deleted, err
}

// prefixRange is the etcd key range of every key starting with prefix:
// range_end is the prefix with its last byte incremented (etcd's
// clientv3.GetPrefixRangeEnd), keys and range_end base64 as the gateway
// wants them.
func prefixRange(prefix string) map[string]string {
	end := []byte(prefix)
	end[len(end)-1]++
	return map[string]string{
		"key":       base64.StdEncoding.EncodeToString([]byte(prefix)),
		"range_end": base64.StdEncoding.EncodeToString(end),
	}
}

// call POSTs body as JSON to path on the endpoints in turn until one
// answers 200, and decodes that answer into out.
func (d *DCS) call(ctx context.Context, path string, body, out any) error {
	payload, err := json.Marshal(body)
	if err != nil {
		return fmt.Errorf("encode etcd %s: %w", path, err)
	}
	lastErr := errors.New("no etcd endpoint")
	for _, ep := range d.endpoints {
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, "http://"+ep+path, bytes.NewReader(payload))
		if err != nil {
			return fmt.Errorf("etcd endpoint %q: %w", ep, err)
		}
		req.Header.Set("Content-Type", "application/json")
		resp, err := d.http.Do(req)
		if err != nil {
			lastErr = err
			continue
		}
		text, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
		resp.Body.Close()
		if err == nil && resp.StatusCode != http.StatusOK {
			err = fmt.Errorf("etcd %s answered %s: %s", ep, resp.Status, bytes.TrimSpace(text))
		}
		if err != nil {
			lastErr = err
			continue
		}
		if err := json.Unmarshal(text, out); err != nil {
			return fmt.Errorf("decode etcd %s answer of %s: %w", path, ep, err)
		}
		return nil
	}
	return lastErr
}
