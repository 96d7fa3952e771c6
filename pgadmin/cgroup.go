package pgadmin

import (
	"context"
	"fmt"
	"regexp"
	"strconv"
	"strings"

	"github.com/jackc/pgx/v5"
)

// Cgroup is the memory and CPU of the control group PostgreSQL's server
// runs in, read by the server itself (pg_read_file, superuser): the
// container figures of the node the connection reached, for when Nomad's
// allocation stats measure nothing (raw_exec on cgroups v1 with cpuacct at
// the root, as on the local stack).
type Cgroup struct {
	AllocationID string // the Nomad allocation named in the path (/nomad/<alloc id>.<task> on v1, …/<alloc id>.<task>.scope on v2)
	Version      int    // 1 or 2
	// MemoryBytes: v1 memory.usage_in_bytes, v2 memory.current.
	MemoryBytes uint64
	// MemoryPeakBytes: v1 memory.max_usage_in_bytes, v2 memory.peak
	// (kernel 5.19 or later; else 0): the highest since the cgroup was made.
	MemoryPeakBytes uint64
	// MemoryLimitBytes: v1 memory.limit_in_bytes, v2 memory.max; 0 when unlimited.
	MemoryLimitBytes uint64
	// SwapBytes: v1 memory.stat "swap", v2 memory.swap.current.
	SwapBytes uint64
	// SwapLimitBytes: v1 memory.memsw.limit_in_bytes less the memory limit,
	// v2 memory.swap.max; 0 when unlimited (swap is then bounded by the host's).
	SwapLimitBytes uint64
	// CPUSeconds: CPU time used: v2 cpu.stat usage_usec of the cgroup; v1
	// the utime and stime of the processes in it now (/proc/<pid>/stat, at
	// 100 ticks a second), so the CPU of backends that exited is not counted.
	CPUSeconds float64
}

// unlimited is what cgroups v1 reports for no limit (close to 2^63).
const unlimited = uint64(1) << 62

var allocInPath = regexp.MustCompile(`/([0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})\.[^/]+$`)

// readCgroup reads the server's Cgroup on conn; ok is false when its
// control group names no Nomad allocation or its files cannot be read.
func readCgroup(ctx context.Context, conn *pgx.Conn) (c Cgroup, ok bool, err error) {
	self, err := readFile(ctx, conn, "/proc/self/cgroup")
	if err != nil {
		return c, false, err
	}
	for line := range strings.Lines(self) {
		parts := strings.SplitN(strings.TrimSpace(line), ":", 3)
		switch {
		case len(parts) != 3:
		case parts[0] == "0" && parts[1] == "" && c.Version == 0:
			c.Version, c.AllocationID = 2, allocOf(parts[2])
			if c.AllocationID != "" {
				return c, true, readV2(ctx, conn, &c, "/sys/fs/cgroup"+parts[2])
			}
		case strings.Contains(","+parts[1]+",", ",memory,"):
			if id := allocOf(parts[2]); id != "" {
				c.Version, c.AllocationID = 1, id
				return c, true, readV1(ctx, conn, &c, "/sys/fs/cgroup/memory"+parts[2])
			}
		}
	}
	return Cgroup{}, false, nil
}

func allocOf(path string) string {
	if m := allocInPath.FindStringSubmatch(path); m != nil {
		return m[1]
	}
	return ""
}

func readV1(ctx context.Context, conn *pgx.Conn, c *Cgroup, dir string) error {
	var err error
	num := func(name string) uint64 {
		s, e := readFile(ctx, conn, dir+"/"+name)
		if e != nil && err == nil {
			err = e
		}
		v, _ := strconv.ParseUint(strings.TrimSpace(s), 10, 64)
		return v
	}
	c.MemoryBytes, c.MemoryPeakBytes = num("memory.usage_in_bytes"), num("memory.max_usage_in_bytes")
	c.MemoryLimitBytes = limit(num("memory.limit_in_bytes"))
	if memsw := limit(num("memory.memsw.limit_in_bytes")); memsw > c.MemoryLimitBytes && c.MemoryLimitBytes > 0 {
		c.SwapLimitBytes = memsw - c.MemoryLimitBytes
	}
	stat, e := readFile(ctx, conn, dir+"/memory.stat")
	if e != nil && err == nil {
		err = e
	}
	c.SwapBytes = field(stat, "swap")
	if err != nil {
		return err
	}
	return conn.QueryRow(ctx, `
		SELECT (coalesce(sum(split_part(s, ' ', 14)::bigint + split_part(s, ' ', 15)::bigint), 0) / 100.0)::float8
		FROM unnest(string_to_array(trim(pg_read_file($1, 0, 65536, true)), E'\n')) AS pid,
		     pg_read_file('/proc/' || pid || '/stat', 0, 65536, true) AS s
		WHERE pid <> '' AND s IS NOT NULL`, dir+"/cgroup.procs").Scan(&c.CPUSeconds)
}

func readV2(ctx context.Context, conn *pgx.Conn, c *Cgroup, dir string) error {
	var err error
	read := func(name string) string {
		s, e := readFile(ctx, conn, dir+"/"+name)
		if e != nil && err == nil {
			err = e
		}
		return strings.TrimSpace(s)
	}
	num := func(name string) uint64 { v, _ := strconv.ParseUint(read(name), 10, 64); return v } // "max" parses to 0: unlimited
	c.MemoryBytes, c.MemoryPeakBytes, c.MemoryLimitBytes = num("memory.current"), num("memory.peak"), num("memory.max")
	c.SwapBytes, c.SwapLimitBytes = num("memory.swap.current"), num("memory.swap.max")
	c.CPUSeconds = float64(field(read("cpu.stat"), "usage_usec")) / 1e6
	return err
}

// readFile returns the text of a server file ("" when it is missing).
func readFile(ctx context.Context, conn *pgx.Conn, path string) (string, error) {
	var s *string
	if err := conn.QueryRow(ctx, `SELECT pg_read_file($1, 0, 65536, true)`, path).Scan(&s); err != nil {
		return "", fmt.Errorf("read %s on the server: %w", path, err)
	}
	if s == nil {
		return "", nil
	}
	return *s, nil
}

// field returns the number after "name " in a cgroup stat file.
func field(stat, name string) uint64 {
	for line := range strings.Lines(stat) {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), name+" "); ok {
			n, _ := strconv.ParseUint(v, 10, 64)
			return n
		}
	}
	return 0
}

func limit(v uint64) uint64 {
	if v >= unlimited {
		return 0
	}
	return v
}
