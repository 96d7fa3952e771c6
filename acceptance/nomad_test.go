package acceptance

import (
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/hashicorp/nomad/api"

	"github.com/pgbroker/pgbroker/naming"
)

var (
	nomadOnce   sync.Once
	nomadShared *api.Client
	nomadErr    error
)

// nomadClient is one client for the whole suite: a client per call would
// open connections until Nomad answers 429 (http_max_conns_per_client).
func nomadClient(t testing.TB) *api.Client {
	t.Helper()
	c, err := sharedNomad()
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// nodeJob returns the instance's node job, or nil when Nomad has none.
func nodeJob(t *testing.T, instanceID string) *api.Job {
	t.Helper()
	job, _, err := nomadClient(t).Jobs().Info(naming.NodesJobID(naming.ShortID(instanceID)), nil)
	if err != nil {
		if !strings.Contains(err.Error(), "404") {
			t.Fatalf("read node job: %v", err)
		}
		return nil
	}
	return job
}

// nodeJobsNamed counts Nomad jobs whose id is the instance's node job id.
func nodeJobsNamed(t *testing.T, instanceID string) int {
	t.Helper()
	want := naming.NodesJobID(naming.ShortID(instanceID))
	jobs, _, err := nomadClient(t).Jobs().PrefixList(want)
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, j := range jobs {
		if j.ID == want && j.Status != "dead" {
			n++
		}
	}
	return n
}

// runningNodeAllocs counts running allocations of the instance's node job.
func runningNodeAllocs(t *testing.T, instanceID string) int {
	t.Helper()
	allocs, _, err := nomadClient(t).Jobs().Allocations(naming.NodesJobID(naming.ShortID(instanceID)), false, nil)
	if err != nil {
		t.Fatalf("list node allocations: %v", err)
	}
	n := 0
	for _, a := range allocs {
		if a.ClientStatus == api.AllocClientStatusRunning {
			n++
		}
	}
	return n
}

func nodeMemoryMiB(t *testing.T, instanceID string) int {
	t.Helper()
	job := nodeJob(t, instanceID)
	if job == nil {
		t.Fatal("node job missing")
	}
	return *job.TaskGroups[0].Tasks[0].Resources.MemoryMB
}

func dataDir(instanceID string) string {
	return filepath.Join(dataRoot, naming.ShortID(instanceID))
}

func exists(path string) bool {
	_, err := os.Stat(path)
	return err == nil
}

// instanceVariables lists the paths of Nomad Variables that belong to the instance.
func instanceVariables(t *testing.T, instanceID string) []string {
	t.Helper()
	short := naming.ShortID(instanceID)
	var paths []string
	for _, prefix := range []string{"nomad/jobs/" + naming.NodesJobID(short), "pgbroker/instances/" + short + "/"} {
		metas, _, err := nomadClient(t).Variables().PrefixList(prefix, nil)
		if err != nil {
			t.Fatalf("list variables: %v", err)
		}
		for _, m := range metas {
			paths = append(paths, m.Path)
		}
	}
	return paths
}
