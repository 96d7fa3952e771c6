package acceptance

import (
	"crypto/rand"
	"encoding/hex"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/hashicorp/nomad/api"

	"github.com/pgbroker/pgbroker/backup"
	"github.com/pgbroker/pgbroker/provisioner"
)

// registerStray registers a long-running job shaped like an instance's
// gateway job, owned (job Meta) by broker name, that no instance owns.
func registerStray(t *testing.T, name string) string {
	t.Helper()
	return registerStrayJob(t, name, provisioner.GatewaysJobID(randomShort()))
}

func randomShort() string {
	buf := make([]byte, 6)
	_, _ = rand.Read(buf)
	return hex.EncodeToString(buf)
}

// registerStrayJob registers a long-running job id owned by broker name.
func registerStrayJob(t *testing.T, name, id string) string {
	t.Helper()
	job := api.NewServiceJob(id, id, "global", 50)
	job.Datacenters = []string{"*"}
	job.Meta = map[string]string{provisioner.MetaBroker: name}
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

// TestOrphanJobsAreReportedThenRemoved: a job carrying this broker's name
// that no instance owns is reported, then removed after the grace period; a
// job of another broker is left alone.
func TestOrphanJobsAreReportedThenRemoved(t *testing.T) {
	b := newBroker(t, "PGBROKER_REAP_INTERVAL=2s", "PGBROKER_ORPHAN_GRACE=8s")
	ours := registerStray(t, b.name)
	theirs := registerStray(t, b.name+"-other")
	waitFor(t, 30*time.Second, "the orphan report", func() bool {
		for _, line := range strings.Split(b.logs.String(), "\n") {
			if strings.Contains(line, `"msg":"orphan Nomad job: no instance owns it"`) && strings.Contains(line, `"job_id":"`+ours+`"`) {
				return true
			}
		}
		return false
	})
	if !jobExists(t, ours) {
		t.Fatal("orphan removed before its grace period")
	}
	waitFor(t, 60*time.Second, "the orphan's removal", func() bool { return !jobExists(t, ours) })
	if !jobExists(t, theirs) {
		t.Fatal("another broker's job was removed")
	}
}

func ptr[T any](v T) *T { return &v }

// TestOrphanBatchJobsAreRemovedWhenTheirRunIsOver: a base backup job and a
// dump job carrying this broker's name whose runs the broker does not know
// (a crash between recording a run and purging its job) are reported, then
// removed with their Nomad Variables after the grace period.
func TestOrphanBatchJobsAreRemovedWhenTheirRunIsOver(t *testing.T) {
	b := newBroker(t, "PGBROKER_REAP_INTERVAL=2s", "PGBROKER_ORPHAN_GRACE=8s")
	short := randomShort()
	nomad := nomadClient(t)
	var ids []string
	for _, id := range []string{backup.BaseBackupJobID(short, uuid.NewString()), backup.DumpJobID(short, uuid.NewString())} {
		registerStrayJob(t, b.name, id)
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
