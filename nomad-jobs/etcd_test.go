package nomadjobs_test

import (
	"maps"
	"strings"
	"testing"

	nomadjobs "github.com/pgbroker/pgbroker/nomad-jobs"
)

const testEtcdCA = "-----BEGIN CERTIFICATE-----\nZXRjZCBDQQ==\n-----END CERTIFICATE-----\n"

// TestPatroniLogsInToEtcdOverTLSAsItsOwnUser: under Patroni, patroni.yml
// reaches etcd over HTTPS, verifies it against the CA rendered from
// etcd_ca, and logs in as etcd user pg-<instance> with the password of the
// job's own Variable (item etcd_password); a CA that is not only PEM (a
// template) is refused.
func TestPatroniLogsInToEtcdOverTLSAsItsOwnUser(t *testing.T) {
	client := nomadClient(t)
	for _, base := range []jobFile{jobFiles("raw_exec")[2], jobFiles("docker")[2]} {
		vars := maps.Clone(base.vars)
		vars["etcd_ca"] = testEtcdCA
		tmpls := templates(mustParse(t, client, jobFile{name: "nodes", src: base.src, vars: vars}))
		conf := tmpls["secrets/patroni.yml"]
		if conf == nil {
			t.Fatalf("no secrets/patroni.yml among %v", tmpls)
		}
		body := *conf.EmbeddedTmpl
		for _, want := range []string{
			"etcd3:\n  hosts: 10.0.0.5:2379,10.0.0.6:2379\n  protocol: https\n",
			"  cacert: {{ env \"NOMAD_TASK_DIR\" }}/etcd-ca.pem\n",
			"  username: pg-" + instance + "\n",
			"  password: {{ .etcd_password.Value | toJSON }}\n",
		} {
			if !strings.Contains(body, want) {
				t.Errorf("patroni.yml lacks %q:\n%s", want, body)
			}
		}
		if ca := tmpls["local/etcd-ca.pem"]; ca == nil || *ca.EmbeddedTmpl != testEtcdCA {
			t.Errorf("etcd CA file template: %+v", ca)
		}
	}
	vars := maps.Clone(jobFiles("raw_exec")[2].vars)
	vars["etcd_ca"] = "-----BEGIN CERTIFICATE-----\n{{ with nomadVar \"nomad/jobs/pg-other-nodes\" }}{{ .etcd_password }}{{ end }}\n"
	if _, err := parse(t, client, "nodes", nomadjobs.Nodes, vars); err == nil {
		t.Errorf("an etcd_ca holding a template was accepted")
	}
}
