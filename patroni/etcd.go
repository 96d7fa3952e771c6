package patroni

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"sync"
	"time"
)

// Namespace is the etcd key prefix of every cluster the broker runs
// (patroni.yml "namespace" in nodes.nomad.hcl).
const Namespace = "/pgbroker/"

// Scope is the Patroni scope of an instance's cluster, short being the
// instance's short id: its keys live in etcd under Namespace + scope + "/"
// (patroni.yml "scope: pg-<instance>" in nodes.nomad.hcl). It also names
// the cluster's etcd user and role (EnsureUser).
func Scope(short string) string { return "pg-" + short }

// DCSConfig is how the broker reaches etcd.
type DCSConfig struct {
	Endpoints []string // host:port of etcd's client URLs, tried in order, over HTTPS
	CAPEM     string   // PEM certificates etcd's server certificate must chain to; "": the system's
	Username  string   // etcd user holding the root role; "": no authentication
	Password  string   // its password
}

// DCS is the etcd cluster Patroni keeps its clusters' keys in (leader lock,
// members, config, initialize, sync, status), reached through etcd's v3
// JSON gateway (POST /v3/kv/..., /v3/auth/...) over HTTPS, authenticated as
// an etcd user with the root role. Safe for concurrent use.
type DCS struct {
	endpoints []string // host:port
	http      *http.Client
	user      string
	password  string
	setupErr  error         // a CA without a certificate: every call fails with it
	retry     time.Duration // between two deletions of a cluster's keys
	rounds    int           // deletions of a cluster's keys before giving up

	mu    sync.Mutex
	token string // etcd's auth token for user; "" before the first authentication
}

// NewDCS returns the DCS of cfg. With no endpoint there is no DCS:
// DeleteCluster, EnsureUser and DeleteUser then do nothing.
func NewDCS(cfg DCSConfig) *DCS {
	d := &DCS{endpoints: cfg.Endpoints, user: cfg.Username, password: cfg.Password,
		retry: 500 * time.Millisecond, rounds: 40}
	tlsConfig := &tls.Config{MinVersion: tls.VersionTLS12}
	if cfg.CAPEM != "" {
		tlsConfig.RootCAs = x509.NewCertPool()
		if !tlsConfig.RootCAs.AppendCertsFromPEM([]byte(cfg.CAPEM)) {
			d.setupErr = errors.New("etcd CA holds no PEM certificate")
		}
	}
	d.http = &http.Client{Timeout: requestTimeout, Transport: &http.Transport{TLSClientConfig: tlsConfig,
		ForceAttemptHTTP2: true, MaxIdleConnsPerHost: 2, IdleConnTimeout: time.Minute}}
	return d
}

// DeleteCluster deletes the cluster scope from etcd: its keys (POST
// /v3/kv/deleterange over Namespace + scope + "/"), then its etcd user and
// role (DeleteUser). A Patroni still shutting down may write its last
// status after the first delete, so it deletes the keys again every 500 ms
// until two rounds in a row found nothing, for up to 20 s. Errors when no
// endpoint answers 200, or keys keep coming back (a Patroni of the cluster
// still runs).
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
			return d.DeleteUser(ctx, scope)
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
