package provisioner

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"sort"
	"strings"
	"time"

	"github.com/hashicorp/nomad/api"
)

// Member is one node of a Business instance's cluster as Patroni reports it
// (GET /cluster, Patroni 3.0 REST API).
type Member struct {
	Name     string `json:"name"`            // "node-<index>", its task group's name
	Role     string `json:"role"`            // "leader", "sync_standby", "replica"
	State    string `json:"state"`           // "running", "streaming", "starting", "stopped", ...
	Host     string `json:"host"`            // PostgreSQL address
	Port     int    `json:"port"`            // PostgreSQL port
	Timeline int    `json:"timeline"`        // PostgreSQL timeline
	LagBytes *int64 `json:"lag,omitempty"`   // WAL bytes behind the leader; nil on the leader
	APIURL   string `json:"api_url"`         // the member's REST API (…/patroni)
	Pending  bool   `json:"pending_restart"` // a parameter change waits for a restart
}

// patroniClient talks to the Patroni REST APIs of one instance's nodes,
// found through the node service's "patroni=<port>" tags.
type patroniClient struct {
	p        *Provisioner
	short    string
	password string // REST API password (user "patroni"), the replication password
	http     *http.Client
}

func (p *Provisioner) patroni(ctx context.Context, short string) (*patroniClient, error) {
	password, err := p.readSecret(ctx, nodesSecretPath(short), "replication_password")
	if err != nil {
		return nil, err
	}
	return &patroniClient{p: p, short: short, password: password, http: &http.Client{Timeout: 5 * time.Second}}, nil
}

// apiBases returns the REST API base URLs of the registered nodes.
func (c *patroniClient) apiBases(ctx context.Context) ([]string, error) {
	regs, _, err := c.p.nomad.Services().Get(NodeService(c.short), (&api.QueryOptions{}).WithContext(ctx))
	if err != nil {
		return nil, fmt.Errorf("look up node service in Nomad: %w", err)
	}
	var out []string
	for _, r := range regs {
		if base := patroniAPI(r); base != "" {
			out = append(out, base)
		}
	}
	if len(out) == 0 {
		return nil, errors.New("no node with a Patroni REST API is registered in Nomad")
	}
	sort.Strings(out)
	return out, nil
}

// patroniAPI returns the Patroni REST API base URL of a node service
// registration (its "patroni=<port>" tag), "" when it has none (no Patroni).
func patroniAPI(r *api.ServiceRegistration) string {
	for _, t := range r.Tags {
		if port, ok := strings.CutPrefix(t, "patroni="); ok {
			return "http://" + r.Address + ":" + port
		}
	}
	return ""
}

// do sends a request to the first node that answers and decodes a JSON
// answer into out (when not nil). Errors name the status and Patroni's text.
func (c *patroniClient) do(ctx context.Context, method, path string, body, out any) error {
	bases, err := c.apiBases(ctx)
	if err != nil {
		return err
	}
	return c.doOn(ctx, bases, method, path, body, out)
}

// doOn is do on the REST APIs bases, tried in order.
func (c *patroniClient) doOn(ctx context.Context, bases []string, method, path string, body, out any) error {
	var lastErr error
	for _, base := range bases {
		var rd io.Reader
		if body != nil {
			b, _ := json.Marshal(body)
			rd = bytes.NewReader(b)
		}
		req, err := http.NewRequestWithContext(ctx, method, base+path, rd)
		if err != nil {
			return err
		}
		req.SetBasicAuth("patroni", c.password)
		req.Header.Set("Content-Type", "application/json")
		resp, err := c.http.Do(req)
		if err != nil {
			lastErr = err
			continue
		}
		text, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
		resp.Body.Close()
		if resp.StatusCode/100 != 2 {
			return fmt.Errorf("Patroni %s %s: %s: %s", method, path, resp.Status, strings.TrimSpace(string(text)))
		}
		if out != nil {
			if err := json.Unmarshal(text, out); err != nil {
				return fmt.Errorf("decode Patroni %s: %w", path, err)
			}
		}
		return nil
	}
	return fmt.Errorf("no Patroni REST API answered %s %s: %w", method, path, lastErr)
}

// members returns the cluster's members, sorted by name.
func (c *patroniClient) members(ctx context.Context) ([]Member, error) {
	var cluster struct {
		Members []Member `json:"members"`
	}
	if err := c.do(ctx, http.MethodGet, "/cluster", nil, &cluster); err != nil {
		return nil, err
	}
	sort.Slice(cluster.Members, func(i, j int) bool { return cluster.Members[i].Name < cluster.Members[j].Name })
	return cluster.Members, nil
}

// setParameters changes PostgreSQL parameters Patroni keeps in the DCS
// (max_connections: every member uses the DCS value when it next starts).
func (c *patroniClient) setParameters(ctx context.Context, params map[string]any) error {
	return c.do(ctx, http.MethodPatch, "/config", map[string]any{"postgresql": map[string]any{"parameters": params}}, nil)
}

// setSynchronousMode turns Patroni's synchronous_mode on or off for the
// whole cluster (PATCH /config; the leader applies it at its next loop).
func (c *patroniClient) setSynchronousMode(ctx context.Context, on bool) error {
	return c.do(ctx, http.MethodPatch, "/config", map[string]any{"synchronous_mode": on}, nil)
}

// synchronousMode reports Patroni's synchronous_mode (GET /config).
func (c *patroniClient) synchronousMode(ctx context.Context) (bool, error) {
	var cfg struct {
		SynchronousMode bool `json:"synchronous_mode"`
	}
	err := c.do(ctx, http.MethodGet, "/config", nil, &cfg)
	return cfg.SynchronousMode, err
}

// switchover makes candidate the leader (Patroni demotes the current one).
// The request goes to the leader's own REST API first: Patroni wakes the
// HA loop of the member that receives it, so the leader demotes at once
// instead of at its next loop (up to loop_wait, 1 s, later).
func (c *patroniClient) switchover(ctx context.Context, leader Member, candidate string) error {
	bases, err := c.apiBases(ctx)
	if err != nil {
		return err
	}
	if own, ok := strings.CutSuffix(leader.APIURL, "/patroni"); ok {
		bases = append([]string{own}, bases...)
	}
	return c.doOn(ctx, bases, http.MethodPost, "/switchover", map[string]string{"leader": leader.Name, "candidate": candidate}, nil)
}

// Members returns the members of a Business instance's cluster (Patroni's
// view). Errors when no node's REST API answers.
func (p *Provisioner) Members(ctx context.Context, in Instance) ([]Member, error) {
	c, err := p.patroni(ctx, in.ShortID)
	if err != nil {
		return nil, err
	}
	return c.members(ctx)
}

// DescribeMembers renders members for a user: "node-0 leader; node-1
// sync_standby streaming, lag 0 B".
func DescribeMembers(members []Member) string {
	parts := make([]string, 0, len(members))
	for _, m := range members {
		s := m.Name + " " + m.Role
		if m.Role != "leader" {
			s += " " + m.State
			if m.LagBytes != nil {
				s += fmt.Sprintf(", lag %d B", *m.LagBytes)
			}
		}
		parts = append(parts, s)
	}
	return strings.Join(parts, "; ")
}

// leaderOf returns the leader's name, "" when there is none.
func leaderOf(members []Member) string {
	for _, m := range members {
		if m.Role == "leader" && m.State == "running" {
			return m.Name
		}
	}
	return ""
}

// healthy reports whether members has a running leader and want standbys
// streaming, one of them synchronous.
func healthy(members []Member, want int) bool {
	standbys, sync := standbysUp(members)
	return leaderOf(members) != "" && standbys >= want && sync
}

// streamingTo reports whether members has a running leader and want
// standbys streaming, synchronous or not.
func streamingTo(members []Member, want int) bool {
	standbys, _ := standbysUp(members)
	return leaderOf(members) != "" && standbys >= want
}

// standbysUp counts the members that are not the leader and run, and
// reports whether one of them is the synchronous standby.
func standbysUp(members []Member) (n int, sync bool) {
	for _, m := range members {
		if m.Role != "leader" && (m.State == "streaming" || m.State == "running") {
			n++
			sync = sync || m.Role == "sync_standby"
		}
	}
	return n, sync
}

// waitMembers polls the cluster until ok(members), reporting members as
// progress when they change.
func (c *patroniClient) waitMembers(ctx context.Context, what string, ok func([]Member) bool, progress Progress) ([]Member, error) {
	last := ""
	for {
		members, err := c.members(ctx)
		if err == nil {
			if s := DescribeMembers(members); s != last {
				progress(what + ": " + s)
				last = s
			}
			if ok(members) {
				return members, nil
			}
		}
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("%s: %w (last: %s)", what, ctx.Err(), last)
		case <-time.After(200 * time.Millisecond):
		}
	}
}
