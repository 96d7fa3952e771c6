package nomad

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"strings"

	"github.com/hashicorp/nomad/api"
)

// ExecError: a command run in an allocation (Exec) exited non-zero.
type ExecError struct {
	Code   int
	Stderr string // the end of its standard error, on one line
}

func (e *ExecError) Error() string {
	return fmt.Sprintf("exit code %d: %s", e.Code, e.Stderr)
}

// Exec runs script with /bin/bash -c in task of allocation allocID (nomad
// alloc exec, no TTY, empty standard input) and returns its standard
// output. Errors: *ExecError when it exits non-zero (with the last 512
// bytes of its standard error); others when Nomad cannot run it.
func (n *Cluster) Exec(ctx context.Context, allocID, task, script string) (string, error) {
	alloc, _, err := n.c.Allocations().Info(allocID, queryOpts(ctx))
	if err != nil {
		return "", fmt.Errorf("read allocation %s from Nomad: %w", shortAlloc(allocID), err)
	}
	var stdout, stderr bytes.Buffer
	code, err := n.c.Allocations().Exec(ctx, alloc, task, false, []string{"/bin/bash", "-c", script},
		strings.NewReader(""), &stdout, &stderr, nil, queryOpts(ctx))
	if err != nil {
		return "", fmt.Errorf("exec in allocation %s: %w", shortAlloc(allocID), err)
	}
	if code != 0 {
		tail := stderr.String()
		if len(tail) > 512 {
			tail = tail[len(tail)-512:]
		}
		return "", &ExecError{Code: code, Stderr: strings.Join(strings.Fields(tail), " ")}
	}
	return stdout.String(), nil
}

// TaskLog returns up to the last limit bytes of stream ("stdout" or
// "stderr") of task in allocation allocID, as the client keeps it
// (alloc/logs/<task>.<stream>.0, read up to 16 MiB). Errors when Nomad cannot
// give it (the allocation was garbage collected).
func (n *Cluster) TaskLog(ctx context.Context, allocID, task, stream string, limit int) ([]byte, error) {
	b, err := n.ReadFile(ctx, allocID, "alloc/logs/"+task+"."+stream+".0", 16<<20)
	if err != nil {
		return nil, err
	}
	if len(b) > limit {
		b = b[len(b)-limit:]
	}
	return b, nil
}

// RestartTask restarts task of allocation allocID in place (nomad alloc
// restart): its templates render afresh from the current services and
// Variables.
func (n *Cluster) RestartTask(ctx context.Context, allocID, task string) error {
	alloc, err := n.Allocation(ctx, allocID)
	if err != nil {
		return err
	}
	if err := n.c.Allocations().Restart(alloc, task, queryOpts(ctx)); err != nil {
		return fmt.Errorf("restart task %s of allocation %s: %w", task, shortAlloc(allocID), err)
	}
	return nil
}

// Allocation reads allocation allocID. Errors: IsNotFound once it is gone.
func (n *Cluster) Allocation(ctx context.Context, allocID string) (*api.Allocation, error) {
	a, _, err := n.c.Allocations().Info(allocID, queryOpts(ctx))
	if err != nil {
		return nil, fmt.Errorf("read allocation %s from Nomad: %w", shortAlloc(allocID), err)
	}
	return a, nil
}

// Services lists the registrations of the Nomad service name (address,
// port, allocation), in Nomad's order.
func (n *Cluster) Services(ctx context.Context, name string) ([]*api.ServiceRegistration, error) {
	regs, _, err := n.c.Services().Get(name, queryOpts(ctx))
	if err != nil {
		return nil, fmt.Errorf("look up service %s in Nomad: %w", name, err)
	}
	return regs, nil
}

// ReadFile returns up to limit bytes from the start of the file at path in
// allocation allocID's directory (nomad alloc fs; a task's rendered
// templates are under "<task>/local/"). Errors when Nomad cannot give it:
// the allocation is gone, the file not written yet.
func (n *Cluster) ReadFile(ctx context.Context, allocID, path string, limit int) ([]byte, error) {
	alloc, err := n.Allocation(ctx, allocID)
	if err != nil {
		return nil, err
	}
	rc, err := n.c.AllocFS().Cat(alloc, path, queryOpts(ctx))
	if err != nil {
		return nil, fmt.Errorf("read %s of allocation %s: %w", path, shortAlloc(allocID), err)
	}
	defer rc.Close()
	b, err := io.ReadAll(io.LimitReader(rc, int64(limit)))
	if err != nil {
		return nil, fmt.Errorf("read %s of allocation %s: %w", path, shortAlloc(allocID), err)
	}
	return b, nil
}
