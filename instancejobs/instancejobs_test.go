package instancejobs

import (
	"context"
	"slices"
	"strings"
	"testing"

	"github.com/hashicorp/nomad/api"

	"github.com/pgbroker/pgbroker/backup"
	"github.com/pgbroker/pgbroker/instance"
	"github.com/pgbroker/pgbroker/naming"
	"github.com/pgbroker/pgbroker/pki"
)

// parser is Nomad's job parser: it keeps the variables a job was parsed with.
type parser struct {
	Nomad // what rendering does not ask
	vars  map[string]any
}

func (p *parser) Parse(_, jobID string, vars map[string]any) (*api.Job, error) {
	p.vars = vars
	return &api.Job{ID: &jobID, Meta: map[string]string{}}, nil
}

// repository is a pgBackRest repository in a directory, and the CA.
type repository struct {
	Backups
	ca *pki.CA
}

func (r repository) Repository() backup.Repository { return backup.Repository{Dir: "/srv/pgbackrest"} }
func (r repository) CA() *pki.CA                   { return r.ca }
func (r repository) EnsurePgBackRest(context.Context, string) error {
	return nil
}

// ca is a loaded CA as rendering sees it: its certificate's PEM.
var ca = &pki.CA{CertPEM: []byte("-----BEGIN CERTIFICATE-----\nbroker CA\n-----END CERTIFICATE-----\n")}

const short = "0123456789ab"

var in = instance.Instance{ShortID: short, NodeID: "client-0"}

// TestBusinessNodesRunUnderPatroniOnDistinctHosts: a node job with
// standbys runs Patroni (etcd over TLS, Meta), is not pinned to the first
// node's client, and lets base backup jobs' certificates in (broker_ca).
func TestBusinessNodesRunUnderPatroniOnDistinctHosts(t *testing.T) {
	p := &parser{}
	r := repository{ca: ca}
	etcdCA := "-----BEGIN CERTIFICATE-----\nZXRjZA==\n-----END CERTIFICATE-----\n"
	job, err := New(p, r, r, Config{Etcd: []string{"127.0.0.1:2379"}, EtcdCA: etcdCA}).Nodes(in, instance.Size{Nodes: 2, PITRDays: 7})
	if err != nil {
		t.Fatal(err)
	}
	if hosts, _ := p.vars["etcd_hosts"].([]string); len(hosts) != 1 || hosts[0] != "127.0.0.1:2379" || p.vars["etcd_ca"] != etcdCA {
		t.Errorf("etcd_hosts %v, etcd_ca %q: want the configured etcd and its CA", p.vars["etcd_hosts"], p.vars["etcd_ca"])
	}
	if p.vars["patroni"] != true || p.vars["node_id"] != "" || p.vars["broker_ca"] != string(r.ca.CertPEM) || job.Meta[naming.MetaPatroni] != "true" {
		t.Fatalf("vars %v, Meta %v", p.vars, job.Meta)
	}
	if p.vars["pitr_repo"] != "/srv/pgbackrest" {
		t.Errorf("pitr_repo = %v with a 7-day PITR window", p.vars["pitr_repo"])
	}
}

// TestAStarterNodeStaysOnItsDataWithoutPatroni: pinned to the client holding
// its data, no Patroni, the broker's CA, no WAL archiving without a PITR window; a restore's
// extra variables override the size's.
func TestAStarterNodeStaysOnItsDataWithoutPatroni(t *testing.T) {
	p := &parser{}
	r := repository{ca: ca}
	job, err := New(p, r, r, Config{}).NodesWith(in, instance.Size{Nodes: 1}, map[string]any{"pitr_restore_id": "r1"})
	if err != nil {
		t.Fatal(err)
	}
	// The CA too: pg_hba.conf asks a replication connection for a certificate from it.
	if p.vars["node_id"] != "client-0" || p.vars["patroni"] != nil || p.vars["broker_ca"] != string(r.ca.CertPEM) || p.vars["etcd_ca"] != nil || job.Meta[naming.MetaPatroni] != "" {
		t.Fatalf("vars %v, Meta %v", p.vars, job.Meta)
	}
	if _, ok := p.vars["pitr_repo"]; ok {
		t.Errorf("pitr_repo set without a PITR window: %v", p.vars)
	}
	if p.vars["pitr_restore_id"] != "r1" {
		t.Errorf("extra variables lost: %v", p.vars)
	}
}

// TestTheNodeJobRunsTheBinariesOfTheInstancesVersion: postgres_bin_dir is
// the configured directory of the instance's version; an instance on a
// version the broker no longer configures is an error naming it, not a job
// on other binaries.
func TestTheNodeJobRunsTheBinariesOfTheInstancesVersion(t *testing.T) {
	r := repository{ca: ca}
	cfg := Config{PostgresBinDirs: map[string]string{"15.18": "/usr/lib/postgresql/15/bin", "15.20": "/opt/pg-15.20/bin"}}
	for version, want := range map[string]string{"15.18": "/usr/lib/postgresql/15/bin", "15.20": "/opt/pg-15.20/bin"} {
		p := &parser{}
		on := in
		on.PostgresVersion = version
		if _, err := New(p, r, r, cfg).Nodes(on, instance.Size{Nodes: 1}); err != nil {
			t.Fatal(err)
		}
		if p.vars["postgres_bin_dir"] != want {
			t.Errorf("PostgreSQL %s: postgres_bin_dir %v, want %s", version, p.vars["postgres_bin_dir"], want)
		}
	}
	p := &parser{}
	if _, err := New(p, r, r, cfg).Nodes(in, instance.Size{Nodes: 1}); err != nil || p.vars["postgres_bin_dir"] != nil {
		t.Errorf("no version: postgres_bin_dir %v (%v), want the job file's default", p.vars["postgres_bin_dir"], err)
	}
	gone := in
	gone.PostgresVersion = "15.16"
	if _, err := New(&parser{}, r, r, cfg).Nodes(gone, instance.Size{Nodes: 1}); err == nil || !strings.Contains(err.Error(), "15.16") {
		t.Errorf("unconfigured version: %v, want an error naming 15.16", err)
	}
}

func TestNodeClientsAreKnownOnlyForOneRunningNodePerDistinctClient(t *testing.T) {
	alloc := func(group, client, desired, status string) *api.AllocationListStub {
		return &api.AllocationListStub{TaskGroup: group, NodeID: client, DesiredStatus: desired, ClientStatus: status}
	}
	run, stop := api.AllocDesiredStatusRun, api.AllocDesiredStatusStop
	up, done := api.AllocClientStatusRunning, api.AllocClientStatusComplete
	for _, c := range []struct {
		name   string
		allocs []*api.AllocationListStub
		want   []string
		ok     bool
	}{
		{"each node on its own client", []*api.AllocationListStub{alloc("node-1", "b", run, up), alloc("node-0", "a", run, up)}, []string{"a", "b"}, true},
		{"a replaced allocation ignored", []*api.AllocationListStub{alloc("node-0", "c", stop, done), alloc("node-0", "a", run, up), alloc("node-1", "b", run, up)}, []string{"a", "b"}, true},
		{"two nodes on one client", []*api.AllocationListStub{alloc("node-0", "a", run, up), alloc("node-1", "a", run, up)}, nil, false},
		{"one node not running", []*api.AllocationListStub{alloc("node-0", "a", run, up), alloc("node-1", "b", run, api.AllocClientStatusPending)}, nil, false},
		{"two allocations of one node", []*api.AllocationListStub{alloc("node-0", "a", run, up), alloc("node-0", "b", run, up)}, nil, false},
		{"a group of another plan", []*api.AllocationListStub{alloc("node-0", "a", run, up), alloc("node-2", "b", run, up)}, nil, false},
	} {
		t.Run(c.name, func(t *testing.T) {
			got, ok := NodeClients(c.allocs, 2)
			if ok != c.ok || (ok && !slices.Equal(got, c.want)) {
				t.Errorf("NodeClients = %q, %v; want %q, %v", got, ok, c.want, c.ok)
			}
		})
	}
}
