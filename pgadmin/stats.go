package pgadmin

import (
	"context"
	"fmt"
)

// DatabaseStats are the figures the dashboard shows of an instance's
// PostgreSQL (stats.Database gives their meaning).
type DatabaseStats struct {
	Connections    int   // client backends in pg_stat_activity, this session excluded
	MaxConnections int   // current_setting('max_connections')
	DataSizeBytes  int64 // pg_database_size(n.Database)
	DiskSizeBytes  int64 // every file under the data directory, WAL and tablespaces included
	// Cgroup is the server's control group, when it names a Nomad allocation.
	Cgroup *Cgroup
}

// statsQuery reads DatabaseStats in one statement. The disk size walks the
// data directory with pg_ls_dir and adds up pg_stat_file sizes (apparent
// sizes, as du --apparent-size): pg_database_size over every database
// misses the shared catalogs, commit logs and WAL, and pg_ls_waldir() alone
// misses the rest. pg_stat_file follows the symbolic links of pg_tblspc
// (and of a pg_wal moved elsewhere), so tablespaces count. A file removed
// during the walk counts as 0 (missing_ok). Only catalog functions run, under
// the pinned search_path: no tenant object is touched.
const statsQuery = `
WITH RECURSIVE walk(path, isdir, size) AS (
	SELECT name, s.isdir, s.size
	FROM pg_ls_dir('.', true, false) AS name, pg_stat_file(name, true) AS s
	UNION ALL
	SELECT w.path || '/' || name, s.isdir, s.size
	FROM walk w, pg_ls_dir(w.path, true, false) AS name, pg_stat_file(w.path || '/' || name, true) AS s
	WHERE w.isdir
)
SELECT
	(SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'client backend' AND pid <> pg_backend_pid())::int,
	current_setting('max_connections')::int,
	pg_database_size($1),
	(SELECT coalesce(sum(size), 0) FROM walk WHERE NOT isdir)::bigint`

// Stats reads the instance's DatabaseStats on one connection as the
// superuser. Errors: the connection's, or the query's naming it.
func (a Admin) Stats(ctx context.Context, n Names) (DatabaseStats, error) {
	conn, err := a.connect(ctx, "postgres")
	if err != nil {
		return DatabaseStats{}, err
	}
	defer conn.Close(ctx)
	var s DatabaseStats
	if err := conn.QueryRow(ctx, statsQuery, n.Database).Scan(&s.Connections, &s.MaxConnections, &s.DataSizeBytes, &s.DiskSizeBytes); err != nil {
		return DatabaseStats{}, fmt.Errorf("read database stats: %w", err)
	}
	c, ok, err := readCgroup(ctx, conn)
	if err != nil {
		return DatabaseStats{}, fmt.Errorf("read the server's control group: %w", err)
	}
	if ok {
		s.Cgroup = &c
	}
	return s, nil
}
