package acceptance

import (
	"fmt"
	"io"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/nomad/api"

	"github.com/pgbroker/pgbroker/naming"
)

// diagnose logs what a person would look at when an operation of the
// instance failed or hung (issue 18): for every allocation of its node and
// gateway jobs, the task events and the end of each task's logs, then who
// listens on which port (ss -ltnp), and the load average.
func diagnose(t testing.TB, instanceID string) {
	t.Helper()
	short := naming.ShortID(instanceID)
	c, err := sharedNomad()
	if err != nil {
		t.Logf("diagnose: %v", err)
		return
	}
	var b strings.Builder
	for _, jobID := range []string{naming.NodesJobID(short), naming.GatewaysJobID(short)} {
		allocs, _, err := c.Jobs().Allocations(jobID, true, nil)
		if err != nil {
			fmt.Fprintf(&b, "job %s: %v\n", jobID, err)
			continue
		}
		for _, stub := range allocs {
			describeAlloc(&b, c, stub)
		}
	}
	if out, err := exec.Command("ss", "-ltnp").CombinedOutput(); err == nil {
		fmt.Fprintf(&b, "ss -ltnp:\n%s\n", out)
	}
	if out, err := exec.Command("cat", "/proc/loadavg").Output(); err == nil {
		fmt.Fprintf(&b, "load average: %s", out)
	}
	t.Logf("diagnostics of instance %s (%s):\n%s", instanceID, short, b.String())
}

// describeAlloc writes one allocation's status, task events and log tails.
func describeAlloc(b *strings.Builder, c *api.Client, stub *api.AllocationListStub) {
	fmt.Fprintf(b, "allocation %s of %s/%s on node %s: %s (desired %s)\n",
		stub.ID[:8], stub.JobID, stub.TaskGroup, stub.NodeName, stub.ClientStatus, stub.DesiredStatus)
	alloc, _, err := c.Allocations().Info(stub.ID, nil)
	if err != nil {
		fmt.Fprintf(b, "  %v\n", err)
		return
	}
	for task, state := range alloc.TaskStates {
		fmt.Fprintf(b, "  task %s: %s (restarts %d)\n", task, state.State, state.Restarts)
		for _, e := range state.Events {
			fmt.Fprintf(b, "    %s %s: %s\n", time.Unix(0, e.Time).Format("15:04:05.000"), e.Type, e.DisplayMessage)
		}
	}
	// Nomad's own task logs and the files single nodes and gateways write
	// there themselves (postgres-<hour>.log, haproxy.stderr.0).
	files, _, err := c.AllocFS().List(alloc, "alloc/logs", nil)
	if err != nil {
		fmt.Fprintf(b, "  alloc/logs: %v\n", err)
		return
	}
	for _, f := range files {
		if f.IsDir || f.Size == 0 {
			continue
		}
		rc, err := c.AllocFS().Cat(alloc, "alloc/logs/"+f.Name, nil)
		if err != nil {
			continue
		}
		out, _ := io.ReadAll(io.LimitReader(rc, 4<<20))
		rc.Close()
		fmt.Fprintf(b, "  alloc/logs/%s (last 30 lines):\n%s\n", f.Name, indent(tail(string(out), 30), "    "))
	}
}

func indent(s, prefix string) string {
	return prefix + strings.ReplaceAll(strings.TrimRight(s, "\n"), "\n", "\n"+prefix)
}
