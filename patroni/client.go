// Package patroni talks to the Patroni clusters of Business instances: the
// members' REST APIs (cluster members, dynamic configuration, synchronous
// mode, switchover) and etcd, where Patroni keeps each cluster's keys. It
// holds the conditions orchestration waits for (a leader, streaming
// standbys, a synchronous standby). It knows nothing of Nomad: the caller
// says where the REST APIs are.
package patroni

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"sort"
	"strings"
	"time"
)

// Endpoints returns the REST API base URLs of a cluster's members
// ("https://10.0.0.1:8008"), the order in which to try them. Errors when none
// can be found.
type Endpoints func(ctx context.Context) ([]string, error)

// Client talks to the Patroni REST APIs of one cluster. Safe for concurrent use.
type Client struct {
	endpoints Endpoints
	password  string // REST API password of user "patroni" (the Variable's item patroni_password)
	http      *http.Client
	timeout   time.Duration // one request, switchover excepted
	poll      time.Duration // between two reads of the members while waiting
}

// requestTimeout bounds one REST API request.
const requestTimeout = 5 * time.Second

// switchoverTimeout bounds POST /switchover: Patroni answers once the new
// leader holds the lock, polling for up to 2×max(10, loop_wait) s
// (api.py poll_failover_result).
const switchoverTimeout = 30 * time.Second

// New returns a Client for the cluster whose members endpoints finds,
// authenticating as user "patroni" with password (restapi.authentication)
// over TLS verified with tlsConfig: the broker's CA and the node service
// name pg-<short>-node, which the node's server certificate carries
// (servercert.Issuer.AdminTLS; the members are reached by address).
func New(endpoints Endpoints, password string, tlsConfig *tls.Config) *Client {
	return &Client{endpoints: endpoints, password: password, http: httpsClient(tlsConfig, 0),
		timeout: requestTimeout, poll: 200 * time.Millisecond}
}

// httpsClient is an HTTP client that speaks TLS with tlsConfig only;
// timeout 0: none beyond the request's context.
func httpsClient(tlsConfig *tls.Config, timeout time.Duration) *http.Client {
	return &http.Client{Timeout: timeout, Transport: &http.Transport{TLSClientConfig: tlsConfig, ForceAttemptHTTP2: false,
		MaxIdleConnsPerHost: 2, IdleConnTimeout: 30 * time.Second}}
}

// APIBase returns the REST API base URL of a member registered at address
// with tags (a Nomad service registration): "https://<address>:<port>" from
// its "patroni=<port>" tag, "" when it has none (a node without Patroni).
func APIBase(address string, tags []string) string {
	for _, t := range tags {
		if port, ok := strings.CutPrefix(t, "patroni="); ok {
			return "https://" + address + ":" + port
		}
	}
	return ""
}

// Answers reports whether the REST API at base answers OPTIONS path (a
// health endpoint: /primary, /replica; no authentication) with 200 within
// 5 s, verified with tlsConfig (as for New).
func Answers(ctx context.Context, base, path string, tlsConfig *tls.Config) bool {
	ctx, cancel := context.WithTimeout(ctx, requestTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodOptions, base+path, nil)
	if err != nil {
		return false
	}
	client := httpsClient(tlsConfig, 0)
	defer client.CloseIdleConnections()
	resp, err := client.Do(req)
	if err != nil {
		return false
	}
	resp.Body.Close()
	return resp.StatusCode == http.StatusOK
}

// Members returns the cluster's members (GET /cluster), sorted by name.
// Errors when no member's REST API answers, or one answers other than 2xx.
func (c *Client) Members(ctx context.Context) ([]Member, error) {
	var cluster struct {
		Members []Member `json:"members"`
	}
	if err := c.do(ctx, http.MethodGet, "/cluster", nil, &cluster); err != nil {
		return nil, err
	}
	sort.Slice(cluster.Members, func(i, j int) bool { return cluster.Members[i].Name < cluster.Members[j].Name })
	return cluster.Members, nil
}

// SetParameters changes PostgreSQL parameters Patroni keeps in the DCS
// (PATCH /config; max_connections: every member uses the DCS value when it
// next starts).
func (c *Client) SetParameters(ctx context.Context, params map[string]any) error {
	return c.do(ctx, http.MethodPatch, "/config", map[string]any{"postgresql": map[string]any{"parameters": params}}, nil)
}

// SetSynchronousMode turns synchronous_mode on or off for the whole
// cluster (PATCH /config; the leader applies it at its next loop).
func (c *Client) SetSynchronousMode(ctx context.Context, on bool) error {
	return c.do(ctx, http.MethodPatch, "/config", map[string]any{"synchronous_mode": on}, nil)
}

// SynchronousMode reports the cluster's synchronous_mode (GET /config).
func (c *Client) SynchronousMode(ctx context.Context) (bool, error) {
	var cfg struct {
		SynchronousMode bool `json:"synchronous_mode"`
	}
	err := c.do(ctx, http.MethodGet, "/config", nil, &cfg)
	return cfg.SynchronousMode, err
}

// Switchover asks Patroni to make candidate the leader in place of leader
// (POST /switchover), and returns once Patroni answers that it did. The
// request goes to the leader's own REST API first: Patroni wakes the HA
// loop of the member that receives it, so the leader demotes at once
// instead of at its next loop. Errors carry Patroni's answer (412 "candidate
// name does not match with sync_standby", 503 "Switchover failed").
func (c *Client) Switchover(ctx context.Context, leader Member, candidate string) error {
	bases, err := c.endpoints(ctx)
	if err != nil {
		return err
	}
	if own, ok := strings.CutSuffix(leader.APIURL, "/patroni"); ok {
		bases = append([]string{own}, bases...)
	}
	body := map[string]string{"leader": leader.Name, "candidate": candidate}
	return c.doOn(ctx, bases, switchoverTimeout, http.MethodPost, "/switchover", body, nil)
}

// do sends a request to the members' REST APIs in turn until one answers.
func (c *Client) do(ctx context.Context, method, path string, body, out any) error {
	bases, err := c.endpoints(ctx)
	if err != nil {
		return err
	}
	return c.doOn(ctx, bases, c.timeout, method, path, body, out)
}

// doOn sends a request to bases in order until one answers (a member down
// or silent for timeout is skipped), and decodes a 2xx JSON answer into out
// (when not nil). Errors name the request, the status and Patroni's text.
func (c *Client) doOn(ctx context.Context, bases []string, timeout time.Duration, method, path string, body, out any) error {
	if len(bases) == 0 {
		return errors.New("no Patroni REST API to ask")
	}
	var payload []byte
	if body != nil {
		var err error
		if payload, err = json.Marshal(body); err != nil {
			return fmt.Errorf("encode Patroni %s %s: %w", method, path, err)
		}
	}
	var lastErr error
	for _, base := range bases {
		status, text, err := c.send(ctx, base, timeout, method, path, payload)
		if err != nil {
			if ctx.Err() != nil {
				return fmt.Errorf("Patroni %s %s: %w", method, path, ctx.Err())
			}
			lastErr = err
			continue
		}
		if status/100 != 2 {
			return fmt.Errorf("Patroni %s %s: %d %s: %s", method, path, status, http.StatusText(status), text)
		}
		if out != nil {
			if err := json.Unmarshal([]byte(text), out); err != nil {
				return fmt.Errorf("decode Patroni %s: %w", path, err)
			}
		}
		return nil
	}
	return fmt.Errorf("no Patroni REST API answered %s %s: %w", method, path, lastErr)
}

// send makes one request to base and returns the status and the answer's
// text (up to 1 MiB).
func (c *Client) send(ctx context.Context, base string, timeout time.Duration, method, path string, payload []byte) (int, string, error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	var rd io.Reader
	if payload != nil {
		rd = bytes.NewReader(payload)
	}
	req, err := http.NewRequestWithContext(ctx, method, base+path, rd)
	if err != nil {
		return 0, "", err
	}
	req.SetBasicAuth("patroni", c.password)
	req.Header.Set("Content-Type", "application/json")
	resp, err := c.http.Do(req)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	text, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return 0, "", fmt.Errorf("read answer of %s: %w", base, err)
	}
	return resp.StatusCode, strings.TrimSpace(string(text)), nil
}
