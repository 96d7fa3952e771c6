package acceptance

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/pgbroker/pgbroker/naming"
	"github.com/pgbroker/pgbroker/provisioner"
)

// assertNoSecretLeak fails when any of secrets, or the instance's admin and
// replication passwords or TLS private key, appears in the broker's log, or in
// the instance's Nomad job specs (Meta and task config included).
func assertNoSecretLeak(t *testing.T, b *broker, instanceID string, secrets ...string) {
	t.Helper()
	short := naming.ShortID(instanceID)
	nomad := nomadClient(t)
	v, _, err := nomad.Variables().Read("nomad/jobs/"+provisioner.NodesJobID(short), nil)
	if err != nil {
		t.Fatalf("read the instance's secrets: %v", err)
	}
	// The Variable also holds what is not secret (force_tls, the certificate).
	for _, key := range []string{"admin_password", "replication_password", "server_private_key"} {
		item, ok := v.Items[key]
		if !ok {
			t.Fatalf("the instance's Variable has no %s", key)
		}
		secrets = append(secrets, item)
	}
	var specs []string
	for _, jobID := range []string{provisioner.NodesJobID(short), provisioner.GatewaysJobID(short)} {
		job, _, err := nomad.Jobs().Info(jobID, nil)
		if err != nil {
			t.Fatalf("read job %s: %v", jobID, err)
		}
		raw, _ := json.Marshal(job)
		specs = append(specs, string(raw))
	}
	logs := b.logs.String()
	for _, s := range secrets {
		if len(s) < 8 {
			t.Fatalf("secret %q is too short to search for", s)
		}
		if strings.Contains(logs, s) {
			t.Errorf("a password appears in the broker's log")
		}
		for i, spec := range specs {
			if strings.Contains(spec, s) {
				t.Errorf("a password appears in Nomad job spec %d", i)
			}
		}
	}
}
