package acceptance

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/hashicorp/nomad/api"

	"github.com/pgbroker/pgbroker/deploy"
	"github.com/pgbroker/pgbroker/naming"
)

// aclAddr is the loopback address of the ACL-enabled Nomad agent: an
// address of its own, so its default ports (4646-4648) and its tasks'
// ports clash with nothing of the stack's agents (127.0.0.1-3).
const aclAddr = "127.0.0.9"

// TestBrokerHoldingOnlyItsNomadACLPolicyProvisionsBindsBacksUpAndDeprovisions:
// on a Nomad agent with ACLs enabled, a broker whose token holds only
// deploy/nomad-acl-policy.hcl runs a Starter instance's whole life: provision,
// bind, a dump, a restore of it, deprovision (data directory gone). The
// token is refused what the broker never needs (nodes, the agent, ACLs,
// Variables outside its paths), and a request without a token is refused,
// so the run proves the policy, not an open agent.
func TestBrokerHoldingOnlyItsNomadACLPolicyProvisionsBindsBacksUpAndDeprovisions(t *testing.T) {
	agent := startACLAgent(t)
	token := agent.tokenWithPolicy(t, "pgbroker", deploy.NomadACLPolicy)
	checkPolicyLimits(t, token)

	b := newBroker(t, "PGBROKER_NOMAD_ADDR=http://"+aclAddr+":4646", "PGBROKER_NOMAD_TOKEN="+token)
	c := b.client()
	id := uuid.NewString()
	const plan = "postgresql-starter-512"
	provision(t, c, id, plan)
	removeDumps(t, id)
	creds := bind(t, c, id, uuid.NewString(), plan, nil)
	app := connect(t, creds["DATABASE_URL"].(string))
	mustExec(t, app, "CREATE TABLE items (id int PRIMARY KEY, body text NOT NULL)")
	mustExec(t, app, "INSERT INTO items SELECT g, 'row ' || g FROM generate_series(1, 100) g")
	atDump := tableChecksum(t, app)
	dump := manualDump(t, b, id)
	mustExec(t, app, "DELETE FROM items WHERE id > 50")
	app.Close(context.Background())

	op := askRestore(t, b, id, dump.ID)
	waitOperation(t, c, id, &op, 3*time.Minute)
	app = connect(t, creds["DATABASE_URL"].(string))
	if got := tableChecksum(t, app); got != atDump {
		t.Errorf("after the restore items checksum %s, want %s (dump time)", got, atDump)
	}
	app.Close(context.Background())

	deprovision(t, c, id, plan)
	if _, err := os.Stat(filepath.Join(dataRoot, naming.ShortID(id))); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("data directory after deprovision: %v, want it gone", err)
	}
	jobs, _, err := agent.mgmt.Jobs().List(nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, j := range jobs {
		if strings.HasPrefix(j.ID, "pg-") && j.Status != "dead" {
			t.Errorf("job %s is %s after deprovision", j.ID, j.Status)
		}
	}
}

// checkPolicyLimits: the policy's token does what the broker does and is
// refused the rest; no token at all is refused even a job list.
func checkPolicyLimits(t *testing.T, token string) {
	t.Helper()
	limited, anonymous := aclClient(t, token), aclClient(t, "")
	if _, _, err := limited.Jobs().List(nil); err != nil {
		t.Errorf("the policy's token cannot list jobs: %v", err)
	}
	mine := &api.Variable{Path: "pgbroker/acl-probe", Items: api.VariableItems{"k": "v"}}
	if _, _, err := limited.Variables().Create(mine, nil); err != nil {
		t.Errorf("the policy's token cannot write %s: %v", mine.Path, err)
	} else if _, err := limited.Variables().Delete(mine.Path, nil); err != nil {
		t.Errorf("the policy's token cannot delete %s: %v", mine.Path, err)
	}
	refused := map[string]func() error{
		"list jobs without a token": func() error { _, _, err := anonymous.Jobs().List(nil); return err },
		"list nodes":                func() error { _, _, err := limited.Nodes().List(nil); return err },
		"read the agent":            func() error { _, err := limited.Agent().Self(); return err },
		"list ACL tokens":           func() error { _, _, err := limited.ACLTokens().List(nil); return err },
		"write a Variable elsewhere": func() error {
			_, _, err := limited.Variables().Create(&api.Variable{Path: "other/acl-probe", Items: api.VariableItems{"k": "v"}}, nil)
			return err
		},
		"read a Variable of a job not its own": func() error {
			_, _, err := limited.Variables().Read("nomad/jobs/other", nil)
			return err
		},
	}
	for what, call := range refused {
		if err := call(); err == nil || !strings.Contains(err.Error(), "403") {
			t.Errorf("%s: %v, want 403 Permission denied", what, err)
		}
	}
}

// aclAgent is a Nomad agent (server and client, raw_exec) with ACLs
// enabled, apart from the stack's, and a management client of it.
type aclAgent struct {
	dir  string
	cmd  *exec.Cmd
	mgmt *api.Client
}

// startACLAgent starts the agent, bootstraps its ACLs and waits for its
// client node; t.Cleanup stops it, stops what its tasks left running,
// unmounts their secrets and removes its directory. Registered before the
// broker's own cleanup, it runs after it: the broker deprovisions first.
func startACLAgent(t *testing.T) *aclAgent {
	t.Helper()
	nomadBin, err := exec.LookPath("nomad")
	if err != nil {
		t.Fatalf("no nomad binary on PATH (scripts/stack.sh env puts the stack's there): %v", err)
	}
	if out, err := exec.Command("ip", "-o", "addr", "show", "dev", "lo").Output(); err != nil || !strings.Contains(string(out), "inet "+aclAddr+"/32") {
		if out, err := exec.Command("ip", "addr", "add", aclAddr+"/32", "dev", "lo").CombinedOutput(); err != nil {
			t.Fatalf("add %s to lo: %v %s", aclAddr, err, out)
		}
	}
	dir, err := os.MkdirTemp("", "pgbroker-nomadacl-")
	if err != nil {
		t.Fatal(err)
	}
	// 0711: tasks running as postgres and pgbroker-backup reach their alloc dirs.
	if err := os.MkdirAll(filepath.Join(dir, "data"), 0o711); err != nil {
		t.Fatal(err)
	}
	for _, d := range []string{dir, filepath.Join(dir, "data")} {
		if err := os.Chmod(d, 0o711); err != nil {
			t.Fatal(err)
		}
	}
	cfg := filepath.Join(dir, "agent.hcl")
	if err := os.WriteFile(cfg, []byte(aclAgentConfig(dir)), 0o600); err != nil {
		t.Fatal(err)
	}
	logFile, err := os.Create(filepath.Join(dir, "agent.log"))
	if err != nil {
		t.Fatal(err)
	}
	a := &aclAgent{dir: dir, cmd: exec.Command(nomadBin, "agent", "-config="+cfg)}
	a.cmd.Stdout, a.cmd.Stderr = logFile, logFile
	a.cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := a.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { a.stop(t); logFile.Close(); _ = os.RemoveAll(dir) })
	a.bootstrap(t)
	a.waitNode(t)
	return a
}

func aclAgentConfig(dir string) string {
	return fmt.Sprintf(`name      = "acl-agent"
data_dir  = %q
bind_addr = %q
advertise {
  http = %[2]q
  rpc  = %[2]q
  serf = %[2]q
}
server {
  enabled          = true
  bootstrap_expect = 1
}
client {
  enabled           = true
  network_interface = "lo"
  options = {
    "fingerprint.denylist" = "env_aws,env_gce,env_azure,env_digitalocean"
  }
  host_network "private" {
    cidr = "%[2]s/32"
  }
}
plugin "raw_exec" {
  config {
    enabled = true
  }
}
acl {
  enabled = true
}
telemetry {
  collection_interval = "15s"
}
`, filepath.Join(dir, "data"), aclAddr)
}

func aclClient(t *testing.T, token string) *api.Client {
	t.Helper()
	c, err := api.NewClient(&api.Config{Address: "http://" + aclAddr + ":4646"})
	if err != nil {
		t.Fatal(err)
	}
	c.SetSecretID(token) // not NOMAD_TOKEN's, which NewClient falls back to
	return c
}

// bootstrap waits for a leader and takes the management token (nomad acl
// bootstrap).
func (a *aclAgent) bootstrap(t *testing.T) {
	t.Helper()
	anonymous := aclClient(t, "")
	var err error
	for deadline := time.Now().Add(60 * time.Second); time.Now().Before(deadline); time.Sleep(500 * time.Millisecond) {
		var tok *api.ACLToken
		if tok, _, err = anonymous.ACLTokens().Bootstrap(nil); err == nil {
			a.mgmt = aclClient(t, tok.SecretID)
			return
		}
	}
	t.Fatalf("nomad acl bootstrap on the ACL agent: %v; log:\n%s", err, a.log())
}

// waitNode waits for the agent's client node: ready, eligible, raw_exec healthy.
func (a *aclAgent) waitNode(t *testing.T) {
	t.Helper()
	for deadline := time.Now().Add(60 * time.Second); time.Now().Before(deadline); time.Sleep(500 * time.Millisecond) {
		nodes, _, err := a.mgmt.Nodes().List(nil)
		if err != nil || len(nodes) == 0 || nodes[0].Status != "ready" || nodes[0].SchedulingEligibility != "eligible" {
			continue
		}
		if d := nodes[0].Drivers["raw_exec"]; d != nil && d.Healthy {
			return
		}
	}
	t.Fatalf("the ACL agent's client node is not ready with raw_exec after 60s; log:\n%s", a.log())
}

// tokenWithPolicy loads rules as policy name and returns the secret of a
// client token holding only it.
func (a *aclAgent) tokenWithPolicy(t *testing.T, name, rules string) string {
	t.Helper()
	if _, err := a.mgmt.ACLPolicies().Upsert(&api.ACLPolicy{Name: name, Rules: rules}, nil); err != nil {
		t.Fatalf("load the ACL policy %s: %v", name, err)
	}
	tok, _, err := a.mgmt.ACLTokens().Create(&api.ACLToken{Name: name, Type: "client", Policies: []string{name}}, nil)
	if err != nil {
		t.Fatalf("create a token with policy %s: %v", name, err)
	}
	return tok.SecretID
}

func (a *aclAgent) log() string {
	b, _ := os.ReadFile(filepath.Join(a.dir, "agent.log"))
	return tail(string(b), 40)
}

// stop purges every job left, stops the agent, then what its tasks left
// running, and unmounts the tmpfs secrets/ and private/ of its tasks.
func (a *aclAgent) stop(t *testing.T) {
	if a.mgmt != nil {
		if jobs, _, err := a.mgmt.Jobs().List(nil); err == nil {
			for _, j := range jobs {
				_, _, _ = a.mgmt.Jobs().Deregister(j.ID, true, nil)
			}
			a.waitNoAllocRunning(30 * time.Second)
		}
	}
	_ = a.cmd.Process.Signal(syscall.SIGINT)
	done := make(chan struct{})
	go func() { _ = a.cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(20 * time.Second):
		_ = a.cmd.Process.Kill()
		<-done
	}
	for _, p := range processesUnder(a.dir) {
		var pid int
		if _, err := fmt.Sscan(p, &pid); err == nil {
			t.Logf("ACL agent: killing what it left: %s", p)
			_ = syscall.Kill(pid, syscall.SIGKILL)
		}
	}
	for _, m := range mountsUnder(a.dir) {
		if err := syscall.Unmount(m, syscall.MNT_DETACH); err != nil {
			t.Logf("ACL agent: unmount %s: %v", m, err)
		}
	}
}

func (a *aclAgent) waitNoAllocRunning(limit time.Duration) {
	for deadline := time.Now().Add(limit); time.Now().Before(deadline); time.Sleep(500 * time.Millisecond) {
		allocs, _, err := a.mgmt.Allocations().List(nil)
		if err != nil {
			return
		}
		running := false
		for _, al := range allocs {
			running = running || al.ClientStatus == "running" || al.ClientStatus == "pending"
		}
		if !running {
			return
		}
	}
}

// mountsUnder lists the mount points under dir, deepest first.
func mountsUnder(dir string) []string {
	f, err := os.Open("/proc/self/mounts")
	if err != nil {
		return nil
	}
	defer f.Close()
	var out []string
	s := bufio.NewScanner(f)
	for s.Scan() {
		if fields := strings.Fields(s.Text()); len(fields) > 1 && strings.HasPrefix(fields[1], dir+"/") {
			out = append(out, fields[1])
		}
	}
	sort.Slice(out, func(i, j int) bool { return len(out[i]) > len(out[j]) })
	return out
}
