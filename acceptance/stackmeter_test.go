package acceptance

import (
	"bufio"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// stackComms are the command names (/proc/<pid>/comm) of the local stack's
// long-running processes: Nomad agents and executors (the cached binary is
// named nomad-<version>), PostgreSQL, HAProxy, etcd and the broker.
var stackComms = []string{"nomad", "postgres", "haproxy", "etcd", "pgbroker"}

// stackMeter measures the CPU time of the stack's processes through a
// cgroup v2 of its own (cpu.stat usage_usec counts every process that ran
// in it, exited ones included), or of the whole machine from /proc/stat
// when there is no cgroup v2 to use (dir empty).
type stackMeter struct {
	dir string // the cgroup directory, or "" for /proc/stat
}

// newStackMeter creates the benchmark's cgroup under the cgroup2 mount and
// moves the stack's processes into it; on cleanup it moves them back to the
// mount's root cgroup and removes it.
func newStackMeter(tb testing.TB) *stackMeter {
	tb.Helper()
	root := cgroup2Mount()
	if root == "" {
		return &stackMeter{}
	}
	dir := filepath.Join(root, fmt.Sprintf("pgbroker-bench-%d", os.Getpid()))
	if err := os.Mkdir(dir, 0o755); err != nil {
		tb.Logf("no cgroup for the stack (%v): measuring the whole machine", err)
		return &stackMeter{}
	}
	m := &stackMeter{dir: dir}
	tb.Cleanup(func() {
		for _, pid := range m.members() {
			_ = os.WriteFile(filepath.Join(root, "cgroup.procs"), []byte(pid), 0)
		}
		if err := os.Remove(dir); err != nil {
			tb.Logf("remove %s: %v", dir, err)
		}
	})
	m.adopt(tb)
	return m
}

// adopt moves every running stack process that is not in the cgroup yet
// into it. Errors: none; a process that exits meanwhile is skipped.
func (m *stackMeter) adopt(tb testing.TB) {
	tb.Helper()
	if m.dir == "" {
		return
	}
	procs, _ := filepath.Glob("/proc/[0-9]*/comm")
	moved := 0
	for _, f := range procs {
		comm, err := os.ReadFile(f)
		if err != nil || !isStackComm(strings.TrimSpace(string(comm))) {
			continue
		}
		pid := filepath.Base(filepath.Dir(f))
		if os.WriteFile(filepath.Join(m.dir, "cgroup.procs"), []byte(pid), 0) == nil {
			moved++
		}
	}
	if moved == 0 {
		tb.Fatalf("no stack process found to measure (%v)", stackComms)
	}
}

func isStackComm(comm string) bool {
	for _, c := range stackComms {
		if comm == c || strings.HasPrefix(comm, c+"-") {
			return true
		}
	}
	return false
}

// members lists the pids in the cgroup.
func (m *stackMeter) members() []string {
	b, _ := os.ReadFile(filepath.Join(m.dir, "cgroup.procs"))
	return strings.Fields(string(b))
}

// what says what is measured, for the printed figure.
func (m *stackMeter) what() string {
	if m.dir == "" {
		return "whole machine (/proc/stat; no cgroup v2)"
	}
	return "the stack's processes (cgroup v2 cpu.stat)"
}

// busyCores measures the CPU time used over window, in cores (1.0 is one
// core busy the whole time).
func (m *stackMeter) busyCores(tb testing.TB, window time.Duration) float64 {
	tb.Helper()
	u0 := m.usage(tb)
	start := time.Now()
	time.Sleep(window)
	return (m.usage(tb) - u0).Seconds() / time.Since(start).Seconds()
}

// usage is the cgroup's usage_usec, or the machine's busy jiffies (USER_HZ
// 100) from the "cpu" line of /proc/stat, as a duration.
func (m *stackMeter) usage(tb testing.TB) time.Duration {
	tb.Helper()
	if m.dir != "" {
		b, err := os.ReadFile(filepath.Join(m.dir, "cpu.stat"))
		if err != nil {
			tb.Fatal(err)
		}
		for _, line := range strings.Split(string(b), "\n") {
			if f := strings.Fields(line); len(f) == 2 && f[0] == "usage_usec" {
				v, err := strconv.ParseInt(f[1], 10, 64)
				if err != nil {
					tb.Fatalf("cpu.stat: %v", err)
				}
				return time.Duration(v) * time.Microsecond
			}
		}
		tb.Fatalf("no usage_usec in %s/cpu.stat", m.dir)
	}
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		tb.Fatal(err)
	}
	var busy int64
	for i, f := range strings.Fields(strings.SplitN(string(b), "\n", 2)[0])[1:] {
		v, err := strconv.ParseInt(f, 10, 64)
		if err != nil {
			tb.Fatalf("/proc/stat: %v", err)
		}
		if i != 3 && i != 4 { // idle, iowait
			busy += v
		}
	}
	return time.Duration(busy) * 10 * time.Millisecond
}

// cgroup2Mount is where cgroup v2 is mounted (/sys/fs/cgroup on a unified
// system, /sys/fs/cgroup/unified on a hybrid one), or "".
func cgroup2Mount() string {
	f, err := os.Open("/proc/mounts")
	if err != nil {
		return ""
	}
	defer f.Close()
	s := bufio.NewScanner(f)
	for s.Scan() {
		if fields := strings.Fields(s.Text()); len(fields) > 2 && fields[2] == "cgroup2" {
			return fields[1]
		}
	}
	return ""
}
