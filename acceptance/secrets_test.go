package acceptance

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/pgbroker/pgbroker/acceptance/leak"
	"github.com/pgbroker/pgbroker/naming"
)

// assertNoSecretLeak fails when any of secrets, the instance's admin and
// replication passwords, its TLS private key, or the broker's CA key appears,
// in any of its forms (leak.Forms: as written, JSON-escaped, base64, a line
// of a PEM body), in the broker's log or in the instance's Nomad job specs
// (Meta, env and driver config included).
func assertNoSecretLeak(t *testing.T, b *broker, instanceID string, secrets ...string) {
	t.Helper()
	short := naming.ShortID(instanceID)
	nomad := nomadClient(t)
	named := map[string]string{}
	var order []string
	add := func(name, value string) {
		if len(value) < 8 {
			t.Fatalf("secret %s is too short to search for", name)
		}
		named[name] = value
		order = append(order, name)
	}
	for i, s := range secrets {
		add(fmt.Sprintf("secret %d given by the test", i+1), s)
	}
	v, _, err := nomad.Variables().Read("nomad/jobs/"+naming.NodesJobID(short), nil)
	if err != nil {
		t.Fatalf("read the instance's secrets: %v", err)
	}
	// The Variable also holds what is not secret (force_tls, the certificate).
	for _, key := range append(slices.Clone(naming.ClusterSecretItems), "server_private_key") {
		item, ok := v.Items[key]
		if !ok {
			t.Fatalf("the instance's Variable has no %s", key)
		}
		add(key, item)
	}
	ca, _, err := nomad.Variables().Read("pgbroker/"+b.brokerName()+"/ca", nil)
	if err != nil {
		t.Fatalf("read the broker's CA: %v", err)
	}
	add("the CA's private key", ca.Items["private_key"])
	texts := map[string]string{"the broker's log": b.logs.String()}
	for _, jobID := range []string{naming.NodesJobID(short), naming.GatewaysJobID(short)} {
		job, _, err := nomad.Jobs().Info(jobID, nil)
		if err != nil {
			t.Fatalf("read job %s: %v", jobID, err)
		}
		raw, _ := json.Marshal(job)
		texts["Nomad job spec "+jobID] = string(raw)
	}
	for where, text := range texts {
		if found := leak.Find(text, order, named); len(found) > 0 {
			t.Errorf("%s holds %s", where, strings.Join(found, ", "))
		}
	}
}
