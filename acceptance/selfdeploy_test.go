package acceptance

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/hashicorp/nomad/api"

	"github.com/pgbroker/pgbroker/deploy"
)

// TestBrokerRunsAsANomadJobWithSecretsFromItsVariable: deploy/pgbroker.nomad.hcl,
// registered as an operator would (the binary on the client, only data_root
// and the port set, the secrets in the job's Nomad Variable), starts a broker
// that migrates its state database and answers the OSB catalog with the
// credentials from the Variable, while the job spec holds none of them.
func TestBrokerRunsAsANomadJobWithSecretsFromItsVariable(t *testing.T) {
	c, err := sharedNomad()
	if err != nil {
		t.Fatal(err)
	}
	suffix := strings.ReplaceAll(uuid.NewString()[:13], "-", "")
	jobID, name := "pgbroker-acc-"+suffix, "pgbroker_acc_"+suffix
	execState(t, "CREATE DATABASE "+name)
	state, _ := url.Parse(stateURL)
	state.Path = "/" + name
	password := "job-var-" + uuid.NewString()

	// The task runs as an unprivileged user: give it a copy of the binary it may execute.
	dir, err := os.MkdirTemp("", "pgbroker-job-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	binary := filepath.Join(dir, "pgbroker")
	src, err := os.ReadFile(brokerBinary)
	if err != nil || os.Chmod(dir, 0o755) != nil || os.WriteFile(binary, src, 0o755) != nil {
		t.Fatalf("copy the broker binary: %v", err)
	}

	vpath := "nomad/jobs/" + jobID
	if _, _, err := c.Variables().Create(&api.Variable{Path: vpath, Items: api.VariableItems{
		"PGBROKER_USERNAME": brokerUser, "PGBROKER_PASSWORD": password, "DATABASE_URL": state.String(),
		"PGBROKER_SECRETS_KEY":        newSecretsKey(t),
		"PGBROKER_RECONCILE_INTERVAL": "0",                             // cleanups purge jobs while the broker runs
		"LD_PRELOAD":                  "/nonexistent/not-a-setting.so", // not a setting: the template must drop it
	}}, nil); err != nil {
		t.Fatalf("put the job's Variable: %v", err)
	}
	t.Cleanup(func() {
		if _, err := c.Variables().Delete(vpath, nil); err != nil {
			t.Errorf("delete %s: %v", vpath, err)
		}
		deleteCA(t, name)
	})

	_, p, _ := strings.Cut(freeAddr(t), ":")
	port, _ := strconv.Atoi(p)
	vars, _ := json.Marshal(map[string]any{"data_root": dataRoot, "binary": binary, "port": port,
		"host_network": "private", "broker_name": name})
	job, err := c.Jobs().ParseHCLOpts(&api.JobsParseRequest{JobHCL: deploy.NomadJob, Variables: string(vars), Canonicalize: true})
	if err != nil {
		t.Fatalf("parse pgbroker.nomad.hcl: %v", err)
	}
	job.ID, job.Name = &jobID, &jobID
	if _, _, err := c.Jobs().Register(job, nil); err != nil {
		t.Fatalf("register %s: %v", jobID, err)
	}
	t.Cleanup(func() {
		if _, _, err := c.Jobs().Deregister(jobID, true, nil); err != nil {
			t.Errorf("purge %s: %v", jobID, err)
		}
		waitAllocsStopped(c, jobID)
	})

	addr := waitForBrokerJob(t, c, jobID)
	status, body := catalogAs(t, addr, password)
	if status != http.StatusOK || !strings.Contains(body, `"postgresql"`) {
		t.Fatalf("GET /v2/catalog of the job's broker at %s: %d %s", addr, status, body)
	}
	if status, _ := catalogAs(t, addr, "wrong-password"); status != http.StatusUnauthorized {
		t.Errorf("a wrong password: %d, want 401", status)
	}
	registered, _, err := c.Jobs().Info(jobID, nil)
	if err != nil {
		t.Fatal(err)
	}
	spec, _ := json.Marshal(registered)
	if strings.Contains(string(spec), password) || strings.Contains(string(spec), state.String()) {
		t.Error("a secret of the Variable reached the job spec")
	}
}

// waitForBrokerJob waits up to 2 minutes for the job's allocation to run and
// its broker to answer /healthz, and returns its host:port.
func waitForBrokerJob(t *testing.T, c *api.Client, jobID string) string {
	t.Helper()
	deadline := time.Now().Add(2 * time.Minute)
	var last string
	for time.Now().Before(deadline) {
		allocs, _, err := c.Jobs().Allocations(jobID, false, nil)
		if err == nil {
			for _, stub := range allocs {
				last = stub.ClientStatus
				alloc, _, err := c.Allocations().Info(stub.ID, nil)
				if err != nil || stub.ClientStatus != "running" || alloc.AllocatedResources == nil {
					continue
				}
				for _, p := range alloc.AllocatedResources.Shared.Ports {
					addr := fmt.Sprintf("%s:%d", p.HostIP, p.Value)
					if resp, err := healthClient.Get("http://" + addr + "/healthz"); err == nil {
						resp.Body.Close()
						if resp.StatusCode == http.StatusOK {
							return addr
						}
					}
				}
			}
		}
		time.Sleep(time.Second)
	}
	t.Fatalf("the broker job %s did not answer /healthz within 2 minutes (allocation %q); task events: %s", jobID, last, taskEvents(c, jobID))
	return ""
}

func catalogAs(t *testing.T, addr, password string) (int, string) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, "http://"+addr+"/v2/catalog", nil)
	req.SetBasicAuth(brokerUser, password)
	req.Header.Set("X-Broker-API-Version", "2.17")
	resp, err := healthClient.Do(req)
	if err != nil {
		t.Fatalf("GET /v2/catalog: %v", err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(body)
}

// taskEvents lists the job's task events, for a failure message.
func taskEvents(c *api.Client, jobID string) string {
	allocs, _, err := c.Jobs().Allocations(jobID, true, nil)
	if err != nil {
		return err.Error()
	}
	var out []string
	for _, a := range allocs {
		for task, st := range a.TaskStates {
			for _, e := range st.Events {
				out = append(out, fmt.Sprintf("%s/%s: %s %s", a.ID[:8], task, e.Type, e.DisplayMessage))
			}
		}
	}
	return strings.Join(out, "; ")
}
