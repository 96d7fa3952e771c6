package nomad

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/hashicorp/nomad/api"

	"github.com/pgbroker/pgbroker/naming"
)

// fakeNomad serves the few Nomad HTTP API routes a test needs.
func fakeNomad(t *testing.T, h http.HandlerFunc) *Cluster {
	t.Helper()
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	c, err := api.NewClient(&api.Config{Address: srv.URL})
	if err != nil {
		t.Fatal(err)
	}
	return New(c, "test-broker", "dep-1")
}

func TestPurgeOfAMissingJobSucceedsAndOtherErrorsNameTheJob(t *testing.T) {
	n := fakeNomad(t, func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodDelete || r.URL.Query().Get("purge") != "true" {
			t.Errorf("unexpected %s %s", r.Method, r.URL)
		}
		if strings.HasSuffix(r.URL.Path, "/gone") {
			http.Error(w, "job not found", http.StatusNotFound)
			return
		}
		http.Error(w, "permission denied", http.StatusForbidden)
	})
	if err := n.Purge(context.Background(), "gone"); err != nil {
		t.Fatalf("purge of a missing job: %v", err)
	}
	err := n.Purge(context.Background(), "pg-abc-nodes")
	if err == nil || !strings.Contains(err.Error(), "pg-abc-nodes") || IsNotFound(err) {
		t.Fatalf("purge refused by Nomad: %v", err)
	}
}

func TestWaitCompleteReportsTheFailedTasksLastEvent(t *testing.T) {
	n := fakeNomad(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-Nomad-Index", "7")
		_ = json.NewEncoder(w).Encode([]*api.AllocationListStub{{
			ID: "0123456789abcdef", ClientStatus: api.AllocClientStatusFailed,
			TaskStates: map[string]*api.TaskState{"dump": {Events: []*api.TaskEvent{
				{Type: "Started"}, {Type: "Terminated", DisplayMessage: "Exit Code: 1"}}}},
		}})
	})
	_, err := n.WaitComplete(context.Background(), "pg-abc-dump-b1", "dump")
	var failed *JobFailedError
	if !errors.As(err, &failed) || failed.AllocID != "0123456789abcdef" || failed.Event != "Terminated: Exit Code: 1" {
		t.Fatalf("err = %#v", err)
	}
}

func TestEnsureVariableKeepsWhatAnotherWriterCreatedFirst(t *testing.T) {
	var mu sync.Mutex
	var stored map[string]string // what "another broker" wrote between our read and our create
	n := fakeNomad(t, func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		defer mu.Unlock()
		switch r.Method {
		case http.MethodGet:
			if stored == nil {
				http.Error(w, "variable not found", http.StatusNotFound)
				return
			}
			_ = json.NewEncoder(w).Encode(api.Variable{Path: "p", Items: stored, ModifyIndex: 3})
		case http.MethodPut:
			// The other writer wins the race: check-and-set fails.
			stored = map[string]string{"admin_password": "theirs"}
			w.WriteHeader(http.StatusConflict)
			_ = json.NewEncoder(w).Encode(api.Variable{Path: "p", Items: stored, ModifyIndex: 3})
		}
	})
	got, err := n.EnsureVariable(context.Background(), "nomad/jobs/pg-abc-nodes", map[string]string{"admin_password": "ours"})
	if err != nil || got["admin_password"] != "theirs" {
		t.Fatalf("EnsureVariable = %v, %v; want the first writer's items", got, err)
	}
}

func TestParseStampsTheJobWithItsIDAndOwner(t *testing.T) {
	n := fakeNomad(t, func(w http.ResponseWriter, r *http.Request) {
		var req api.JobsParseRequest
		_ = json.NewDecoder(r.Body).Decode(&req)
		if !strings.Contains(req.Variables, `instance = "abc"`) {
			t.Errorf("variables sent: %q", req.Variables)
		}
		id := "from-file"
		_ = json.NewEncoder(w).Encode(api.Job{ID: &id, Name: &id})
	})
	job, err := n.Parse(`job "from-file" {}`, "pg-abc-nodes", map[string]any{"instance": "abc"})
	if err != nil || *job.ID != "pg-abc-nodes" || *job.Name != "pg-abc-nodes" || job.Meta[naming.MetaBroker] != "test-broker" || job.Meta[naming.MetaDeployment] != "dep-1" {
		t.Fatalf("job %+v, %v", job, err)
	}
}
