package acceptance

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/hashicorp/nomad/api"
	"github.com/jackc/pgx/v5"

	"github.com/pgbroker/pgbroker/backup"
	"github.com/pgbroker/pgbroker/naming"
)

// deploymentOf is the identity of b's deployment (its state database's
// deployment row), which every job it registers carries.
func deploymentOf(t *testing.T, b *broker) string {
	t.Helper()
	conn, err := pgx.Connect(context.Background(), b.stateDB)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	var id string
	if err := conn.QueryRow(context.Background(), `SELECT id::text FROM deployment`).Scan(&id); err != nil {
		t.Fatal(err)
	}
	return id
}

func randomShort() string {
	buf := make([]byte, 6)
	_, _ = rand.Read(buf)
	return hex.EncodeToString(buf)
}

// registerStrayJob registers a long-running job id whose Meta names broker
// name and deployment identity deployment ("" for none).
func registerStrayJob(t *testing.T, name, deployment, id string) string {
	t.Helper()
	job := api.NewServiceJob(id, id, "global", 50)
	job.Datacenters = []string{"*"}
	job.Meta = map[string]string{naming.MetaBroker: name}
	if deployment != "" {
		job.Meta[naming.MetaDeployment] = deployment
	}
	task := api.NewTask("sleep", "raw_exec").SetConfig("command", "/bin/sleep").SetConfig("args", []string{"3600"})
	task.User = "nobody"
	task.Require(&api.Resources{CPU: ptr(10), MemoryMB: ptr(16)})
	job.AddTaskGroup(api.NewTaskGroup("g", 1).AddTask(task))
	if _, _, err := nomadClient(t).Jobs().Register(job, nil); err != nil {
		t.Fatalf("register stray job: %v", err)
	}
	t.Cleanup(func() { _, _, _ = nomadClient(t).Jobs().Deregister(id, true, nil) })
	return id
}

func jobExists(t *testing.T, id string) bool {
	t.Helper()
	job, _, err := nomadClient(t).Jobs().Info(id, nil)
	if err != nil && !strings.Contains(err.Error(), "404") {
		t.Fatalf("read job %s: %v", id, err)
	}
	return err == nil && *job.Status != "dead"
}

// TestOrphanSweepDeletesOnlyOnATombstone (issue 12, hole 3): of the jobs
// carrying this broker's name,
//   - the job of an instance whose deprovisioning is recorded is reported,
//     then removed after the grace period;
//   - the job of an instance the state database does not know (as after a
//     restore of an older backup) is never removed: the log and /readyz say
//     why;
//   - a job of another deployment with the same name, and a job of another
//     broker, are left alone.
func TestOrphanSweepDeletesOnlyOnATombstone(t *testing.T) {
	b := newBroker(t, "PGBROKER_REAP_INTERVAL=2s", "PGBROKER_ORPHAN_GRACE=8s")
	c := b.client()
	deployment := deploymentOf(t, b)
	gone := uuid.NewString()
	provision(t, c, gone, "postgresql-sandbox")
	deprovision(t, c, gone, "postgresql-sandbox")
	// The job comes back after the deprovision (a stray registration).
	tombstoned := registerStrayJob(t, b.name, deployment, naming.GatewaysJobID(naming.ShortID(gone)))
	unknown := registerStrayJob(t, b.name, deployment, naming.GatewaysJobID(randomShort()))
	otherDeployment := registerStrayJob(t, b.name, uuid.NewString(), naming.GatewaysJobID(randomShort()))
	otherBroker := registerStrayJob(t, b.name+"-other", deployment, naming.GatewaysJobID(randomShort()))
	waitFor(t, 30*time.Second, "the orphan report", func() bool {
		for _, line := range strings.Split(b.logs.String(), "\n") {
			if strings.Contains(line, `"msg":"orphan Nomad job: its instance is deprovisioned"`) && strings.Contains(line, `"job_id":"`+tombstoned+`"`) {
				return true
			}
		}
		return false
	})
	if !jobExists(t, tombstoned) {
		t.Fatal("orphan removed before its grace period")
	}
	waitFor(t, 60*time.Second, "the tombstoned instance's job removal", func() bool { return !jobExists(t, tombstoned) })
	status, body := b.raw("GET", "/readyz", "", nil)
	if status != 503 || !strings.Contains(body, "does not know") {
		t.Fatalf("/readyz with an instance the state database does not know: %d %s", status, body)
	}
	if !strings.Contains(b.logs.String(), "orphan sweep refused") {
		t.Fatal("the log does not say why the sweep refused")
	}
	for name, id := range map[string]string{"unknown instance's": unknown, "other deployment's": otherDeployment, "other broker's": otherBroker} {
		if !jobExists(t, id) {
			t.Errorf("the %s job was removed", name)
		}
	}
	// Once Nomad no longer runs what the database does not know, /readyz is back.
	if _, _, err := nomadClient(t).Jobs().Deregister(unknown, true, nil); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 30*time.Second, "/readyz to recover", func() bool {
		status, _ := b.raw("GET", "/readyz", "", nil)
		return status == 200
	})
}

// TestABrokerOnAFreshStateDatabaseTouchesNothingOfTheFirst (issue 12, hole
// 3): a second broker with the same PGBROKER_BROKER_NAME but its own, empty
// state database (a second deployment, or the first pointed at an empty
// database by mistake) sweeps every 2 s with an 8 s grace while an instance
// of the first runs: after 30 s the instance's jobs, Variables and data
// directory are all there and it still serves; the first broker then
// deprovisions it cleanly.
func TestABrokerOnAFreshStateDatabaseTouchesNothingOfTheFirst(t *testing.T) {
	first := newBroker(t)
	c := first.client()
	id := uuid.NewString()
	provision(t, c, id, "postgresql-sandbox")
	short := naming.ShortID(id)
	second := newBroker(t, "PGBROKER_REAP_INTERVAL=2s", "PGBROKER_ORPHAN_GRACE=8s", "PGBROKER_BROKER_NAME="+first.name)
	if deploymentOf(t, second) == deploymentOf(t, first) {
		t.Fatal("two state databases share a deployment identity")
	}
	waitJobsSettled(t, first)
	before := stateSnapshot(t, first, short)
	time.Sleep(30 * time.Second)
	if !strings.Contains(second.logs.String(), "registered by another deployment") {
		t.Error("the second broker's log does not say it left the first deployment's jobs alone")
	}
	if after := stateSnapshot(t, first, short); after != before {
		t.Fatalf("the second broker changed the first's instance:\n%s", diffLines(before, after))
	}
	if !exists(dataDir(id)) {
		t.Fatal("the instance's data directory is gone")
	}
	creds := bind(t, c, id, uuid.NewString(), "postgresql-sandbox", nil)
	conn := connect(t, creds["DATABASE_URL"].(string))
	var one int
	if err := conn.QueryRow(context.Background(), "SELECT 1").Scan(&one); err != nil {
		t.Fatalf("the instance no longer serves: %v", err)
	}
	conn.Close(context.Background())
	second.stop()
	deprovision(t, c, id, "postgresql-sandbox")
	assertGone(t, id)
}

func ptr[T any](v T) *T { return &v }

// TestOrphanBatchJobsAreRemovedWhenTheirRunIsOver: a base backup job and a
// dump job carrying this broker's name and deployment whose runs the broker does not know
// (a crash between recording a run and purging its job) are reported, then
// removed with their Nomad Variables after the grace period.
func TestOrphanBatchJobsAreRemovedWhenTheirRunIsOver(t *testing.T) {
	b := newBroker(t, "PGBROKER_REAP_INTERVAL=2s", "PGBROKER_ORPHAN_GRACE=8s")
	short := randomShort()
	nomad := nomadClient(t)
	var ids []string
	for _, id := range []string{backup.BaseBackupJobID(short, uuid.NewString()), backup.DumpJobID(short, uuid.NewString())} {
		registerStrayJob(t, b.name, deploymentOf(t, b), id)
		path := "nomad/jobs/" + id
		if _, _, err := nomad.Variables().Create(&api.Variable{Path: path, Items: api.VariableItems{"admin_password": "x"}}, nil); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _, _ = nomad.Variables().Delete(path, nil) })
		ids = append(ids, id)
	}
	waitFor(t, 30*time.Second, "the orphan report", func() bool {
		return strings.Contains(b.logs.String(), `"msg":"orphan Nomad batch job: its run is over"`)
	})
	for _, id := range ids {
		waitFor(t, 60*time.Second, "the removal of "+id+" and its variable", func() bool {
			vars, _, err := nomad.Variables().PrefixList("nomad/jobs/"+id, nil)
			if err != nil {
				t.Fatal(err)
			}
			return !jobExists(t, id) && len(vars) == 0
		})
	}
}
