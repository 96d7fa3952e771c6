package pitr

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"time"

	"github.com/hashicorp/nomad/api"

	"github.com/pgbroker/pgbroker/adminconn"
	"github.com/pgbroker/pgbroker/instance"
	"github.com/pgbroker/pgbroker/naming"
	"github.com/pgbroker/pgbroker/pgadmin"
)

// fake is every adapter of a Restorer at once, for one instance (its node
// job, its PostgreSQL) and the source of a copy: Nomad, the backups, the
// jobs, the connections and the tier changes. It logs each call that
// changes something or that a restore must make, in order, as one line.
type fake struct {
	log     []string
	job     *api.Job // the instance's node job as registered; nil: none
	version uint64   // its version
	marker  string   // the restore id whose marker is in the data directory the gateway reaches; "" none
	// passwords PostgreSQL accepts for naming.AdminUser: the source's
	// admin password only until a copy is adopted.
	accepts string
}

// newFake returns a fake whose instance runs a node job of nodes nodes,
// registered once, Patroni's when nodes > 1.
func newFake(nodes int) *fake {
	f := &fake{accepts: "own"}
	id := naming.NodesJobID(testShort)
	f.job = &api.Job{ID: &id, Meta: map[string]string{}, Version: new(uint64)}
	for i := range nodes {
		name := naming.Member(i)
		f.job.TaskGroups = append(f.job.TaskGroups, &api.TaskGroup{Name: &name})
	}
	if nodes > 1 {
		f.job.Meta[naming.MetaPatroni] = "true"
	}
	return f
}

func (f *fake) record(format string, args ...any) {
	f.log = append(f.log, fmt.Sprintf(format, args...))
}

// --- Nomad -----------------------------------------------------------------

func (f *fake) Job(_ context.Context, jobID string) (*api.Job, error) {
	if f.job == nil || *f.job.ID != jobID {
		return nil, fmt.Errorf("fake Nomad has no job %s", jobID)
	}
	cur := *f.job
	cur.Meta = maps.Clone(f.job.Meta)
	v := f.version
	cur.Version = &v
	return &cur, nil
}

func (f *fake) Register(_ context.Context, job *api.Job) (uint64, error) {
	f.version++
	f.job = job
	f.record("register v%d nodes=%d restore=%s", f.version, len(job.TaskGroups), job.Meta[naming.MetaPITRRestore])
	return f.version, nil
}

func (f *fake) WaitRunning(_ context.Context, jobID string, version uint64, count int, _, _ string, _ func(string)) ([]*api.AllocationListStub, error) {
	f.record("wait %s v%d x%d", jobID, version, count)
	if r := f.job.Meta[naming.MetaPITRRestore]; r != "" {
		f.marker = r // the start script restored and left its marker
	}
	return nil, nil
}

// --- backups ---------------------------------------------------------------

func (f *fake) ArchiveAndChooseSet(_ context.Context, short string, target time.Time) (string, error) {
	f.record("archive %s until %s", short, target.Format(time.RFC3339))
	return "20261116-020000F", nil
}

func (f *fake) CreateStanza(_ context.Context, short string) error {
	f.record("stanza-create %s", short)
	return nil
}

// --- jobs ------------------------------------------------------------------

// NodesWith renders a node job of s.Nodes groups carrying the extra
// variables in its Meta (sorted "k=v" under the key "extra") for the log.
func (f *fake) NodesWith(in instance.Instance, s instance.Size, extra map[string]any) (*api.Job, error) {
	id := naming.NodesJobID(in.ShortID)
	job := &api.Job{ID: &id, Meta: map[string]string{}}
	for i := range s.Nodes {
		name := naming.Member(i)
		job.TaskGroups = append(job.TaskGroups, &api.TaskGroup{Name: &name})
	}
	var kv []string
	for _, k := range slices.Sorted(maps.Keys(extra)) {
		kv = append(kv, fmt.Sprintf("%s=%v", k, extra[k]))
	}
	f.record("render nodes=%d node_id=%s %v", s.Nodes, in.NodeID, kv)
	return job, nil
}

func (f *fake) EnsurePITRKeys(_ context.Context, short string) error {
	f.record("pitr-keys %s", short)
	return nil
}

func (f *fake) AllocNode(_ context.Context, _ string, index int) (string, error) {
	return fmt.Sprintf("client-%d", index), nil
}

// --- connections -----------------------------------------------------------

func (f *fake) GatewayAddress(context.Context, string) (string, error) { return "10.0.0.1", nil }

func (f *fake) At(_ string, _ instance.Instance, password string) adminconn.AdminConn {
	return &fakeAdmin{f: f, password: password}
}

func (f *fake) InstanceAdmin(context.Context, instance.Instance) (adminconn.AdminConn, error) {
	return &fakeAdmin{f: f, password: "own"}, nil
}

func (f *fake) WaitReady(context.Context, adminconn.AdminConn, instance.Progress) error {
	f.record("ready")
	return nil
}

// ReadSecret: the admin password of the instance is "own", the source's "theirs".
func (f *fake) ReadSecret(_ context.Context, path, _ string) (string, error) {
	if path == naming.NodesSecretPath(testShort) {
		return "own", nil
	}
	return "theirs", nil
}

// --- tier changes ----------------------------------------------------------

func (f *fake) ToSingle(_ context.Context, in instance.Instance, size instance.Size, _ instance.Progress) (instance.Placement, error) {
	f.record("to-single nodes=%d", size.Nodes)
	f.job.TaskGroups = f.job.TaskGroups[:1]
	delete(f.job.Meta, naming.MetaPatroni)
	return instance.Placement{NodeID: "client-0"}, nil
}

func (f *fake) ToCluster(_ context.Context, in instance.Instance, size instance.Size, _ instance.Progress) error {
	f.record("to-cluster nodes=%d node_id=%s", size.Nodes, in.NodeID)
	f.job.Meta = map[string]string{naming.MetaPatroni: "true"} // the restore no longer named
	return nil
}

// fakeAdmin is PostgreSQL as one password sees it.
type fakeAdmin struct {
	adminconn.AdminConn // what restores do not ask panics
	f                   *fake
	password            string
}

// InRecovery: replay is over (a restore of the fake takes no time); a
// password PostgreSQL does not accept fails.
func (a *fakeAdmin) InRecovery(context.Context) (bool, error) {
	if a.password != a.f.accepts {
		return false, errors.New("password authentication failed")
	}
	return false, nil
}

func (a *fakeAdmin) HasDataFile(_ context.Context, name string) (bool, error) {
	return a.f.marker != "" && name == "pgbroker-pitr-"+a.f.marker, nil
}

func (a *fakeAdmin) AdoptCluster(_ context.Context, from, to pgadmin.Names, adminPassword string) error {
	a.f.record("adopt %s -> %s as %s, admin password %s", from.Database, to.Database, a.password, adminPassword)
	a.f.accepts = adminPassword
	return nil
}
