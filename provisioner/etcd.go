package provisioner

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
)

// PatroniScope is the Patroni scope of an instance's cluster: its keys live
// in etcd under /pgbroker/<scope>/ (nodes.nomad.hcl).
func PatroniScope(short string) string { return "pg-" + short }

// deletePatroniKeys deletes the instance's Patroni keys from etcd (leader,
// members, config, initialize, sync, status) through etcd's v3 JSON gateway
// (POST /v3/kv/deleterange), trying each endpoint until one answers. No
// etcd configured, or no keys: nothing to do. Errors when no endpoint
// answered 200.
func (p *Provisioner) deletePatroniKeys(ctx context.Context, short string) error {
	if len(p.cfg.Etcd) == 0 {
		return nil
	}
	prefix := "/pgbroker/" + PatroniScope(short) + "/"
	// range_end: the prefix with its last byte incremented ("/" + 1 = "0").
	end := prefix[:len(prefix)-1] + "0"
	body, _ := json.Marshal(map[string]string{
		"key":       base64.StdEncoding.EncodeToString([]byte(prefix)),
		"range_end": base64.StdEncoding.EncodeToString([]byte(end)),
	})
	var lastErr error
	for _, ep := range p.cfg.Etcd {
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, "http://"+ep+"/v3/kv/deleterange", bytes.NewReader(body))
		if err != nil {
			return fmt.Errorf("etcd endpoint %q: %w", ep, err)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			lastErr = err
			continue
		}
		resp.Body.Close()
		if resp.StatusCode == http.StatusOK {
			return nil
		}
		lastErr = fmt.Errorf("etcd %s answered %s", ep, resp.Status)
	}
	return fmt.Errorf("delete Patroni keys %s* from etcd: %w", prefix, lastErr)
}
