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
	DiskSizeBytes  int64 // the databases (tablespaces included), the WAL and the shared catalogs: all of the data directory but a few hundred KiB (statsQuery)
	// Cgroup is the server's control group, when it names a Nomad allocation.
	Cgroup *Cgroup
}

// statsQuery reads DatabaseStats in one statement. The disk size is the
// apparent size (as du --apparent-size) of the databases (pg_database_size
// of each: base/ and their tablespaces, walked in C), the WAL
// (pg_ls_waldir) and the shared catalogs (global/), which hold all but the
// few hundred KiB of commit logs and state files. A walk of the whole data
// directory in SQL (pg_ls_dir and pg_stat_file, recursively) was exact but
// took 0.3 to 0.9 s on an idle Starter instance of this machine, which the
// overview could not afford. Only catalog functions run, under the pinned
// search_path: no tenant object is touched.
const statsQuery = `
SELECT
	(SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'client backend' AND pid <> pg_backend_pid())::int,
	current_setting('max_connections')::int,
	pg_database_size($1),
	((SELECT coalesce(sum(pg_database_size(oid)), 0) FROM pg_database)
	 + (SELECT coalesce(sum(size), 0) FROM pg_ls_waldir())
	 + (SELECT coalesce(sum((pg_stat_file('global/' || name, true)).size), 0) FROM pg_ls_dir('global', true, false) AS name))::bigint`

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
