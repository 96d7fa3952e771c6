package provisioner

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"time"
)

// PatroniScope is the Patroni scope of an instance's cluster: its keys live
// in etcd under /pgbroker/<scope>/ (nodes.nomad.hcl).
func PatroniScope(short string) string { return "pg-" + short }

// deletePatroniKeys deletes the instance's Patroni keys from etcd (leader,
// members, config, initialize, sync, status) through etcd's v3 JSON gateway
// (POST /v3/kv/deleterange), trying each endpoint until one answers, and
// checks none is left: a Patroni still shutting down may write its last
// status after the first delete, so it deletes again every 500 ms until
// two rounds in a row found nothing, for up to 20 s. No etcd
// configured: nothing to do. Errors when no endpoint answered 200, or keys
// keep coming back.
func (p *Provisioner) deletePatroniKeys(ctx context.Context, short string) error {
	if len(p.cfg.Etcd) == 0 {
		return nil
	}
	prefix := "/pgbroker/" + PatroniScope(short) + "/"
	// range_end: the prefix with its last byte incremented ("/" + 1 = "0").
	keyRange := map[string]any{
		"key":       base64.StdEncoding.EncodeToString([]byte(prefix)),
		"range_end": base64.StdEncoding.EncodeToString([]byte(prefix[:len(prefix)-1] + "0")),
	}
	empty := 0
	for attempt := 0; ; attempt++ {
		var deleted struct {
			Deleted string `json:"deleted"`
		}
		if err := p.etcdCall(ctx, "/v3/kv/deleterange", keyRange, &deleted); err != nil {
			return fmt.Errorf("delete Patroni keys %s* from etcd: %w", prefix, err)
		}
		if deleted.Deleted == "" || deleted.Deleted == "0" {
			if empty++; empty == 2 {
				return nil // nothing came back for a second
			}
		} else {
			empty = 0
		}
		if attempt == 40 {
			return fmt.Errorf("Patroni keys %s* keep coming back in etcd: a Patroni of the instance still runs", prefix)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(500 * time.Millisecond):
		}
	}
}

// etcdCall POSTs body as JSON to path of the first etcd endpoint that
// answers 200 and decodes the answer into out.
func (p *Provisioner) etcdCall(ctx context.Context, path string, body, out any) error {
	b, _ := json.Marshal(body)
	var lastErr error
	for _, ep := range p.cfg.Etcd {
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, "http://"+ep+path, bytes.NewReader(b))
		if err != nil {
			return fmt.Errorf("etcd endpoint %q: %w", ep, err)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			lastErr = err
			continue
		}
		err = json.NewDecoder(resp.Body).Decode(out)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			lastErr = fmt.Errorf("etcd %s answered %s", ep, resp.Status)
			continue
		}
		return err
	}
	return lastErr
}
