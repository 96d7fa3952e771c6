package acceptance

import (
	"context"
	"encoding/base64"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/nomad/api"
	"github.com/jackc/pgx/v5"
)

// stateSnapshot renders everything a request to b could change, for
// comparison before and after (issue 12, hole 8: counting rows misses a
// changed row):
//   - every row of the broker's own tables (instances, operations, bindings,
//     backups, ... everything in its database but River's and goose's
//     bookkeeping, the brokers' heartbeats and the sampled figures), in full, and River's
//     operation and backup jobs;
//   - for each instance short id in shorts: its Nomad jobs (id,
//     job modify index: a new version, stop flag) and Variables (path, modify index);
//   - every etcd key under /pgbroker/.
func stateSnapshot(t *testing.T, b *broker, shorts ...string) string {
	t.Helper()
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, b.stateDB)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	var out strings.Builder
	rows, err := conn.Query(ctx, `SELECT table_name FROM information_schema.tables
		WHERE table_schema = current_schema() AND table_type = 'BASE TABLE'
		AND table_name NOT LIKE 'river%' AND table_name NOT LIKE 'goose%'
		AND table_name NOT IN ('broker_heartbeats', 'instance_metrics') ORDER BY table_name`)
	// Heartbeats and the sampler's figures change every few seconds by design.
	if err != nil {
		t.Fatal(err)
	}
	tables, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil || len(tables) < 3 {
		t.Fatalf("list the broker's tables: %v (%d found)", err, len(tables))
	}
	for _, table := range append(tables, "river_job") {
		where := ""
		if table == "river_job" {
			where = ` WHERE kind IN ('operation', 'backup', 'base_backup')` // not the periodic sweeps
		}
		var rowsJSON string
		q := fmt.Sprintf(`SELECT coalesce(jsonb_agg(to_jsonb(t) ORDER BY to_jsonb(t)::text), '[]')::text FROM %s t%s`,
			pgx.Identifier{table}.Sanitize(), where)
		if err := conn.QueryRow(ctx, q).Scan(&rowsJSON); err != nil {
			t.Fatalf("read table %s: %v", table, err)
		}
		fmt.Fprintf(&out, "table %s: %s\n", table, rowsJSON)
	}
	nomad := nomadClient(t)
	for _, short := range shorts {
		q := &api.QueryOptions{Prefix: "pg-" + short + "-"}
		jobs, _, err := nomad.Jobs().List(q)
		if err != nil {
			t.Fatalf("list jobs of %s: %v", short, err)
		}
		for _, j := range jobs {
			fmt.Fprintf(&out, "job %s modified %d stop %v\n", j.ID, j.JobModifyIndex, j.Stop)
		}
		for _, prefix := range []string{"nomad/jobs/pg-" + short + "-", "pgbroker/instances/" + short + "/"} {
			vars, _, err := nomad.Variables().PrefixList(prefix, nil)
			if err != nil {
				t.Fatalf("list Variables under %s: %v", prefix, err)
			}
			for _, v := range vars {
				fmt.Fprintf(&out, "variable %s modified %d\n", v.Path, v.ModifyIndex)
			}
		}
	}
	keys, err := etcdKeysUnder("/pgbroker/")
	if err != nil {
		t.Fatalf("list etcd keys: %v", err)
	}
	slices.Sort(keys)
	fmt.Fprintf(&out, "etcd keys: %s\n", strings.Join(keys, " "))
	return out.String()
}

// waitJobsSettled waits until River has recorded the end of every
// operation and backup job of b (its completer writes asynchronously, after
// last_operation already says succeeded), so that stateSnapshot compares a
// settled state.
func waitJobsSettled(t *testing.T, b *broker) {
	t.Helper()
	conn, err := pgx.Connect(context.Background(), b.stateDB)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	waitFor(t, 30*time.Second, "River to record the end of the broker's jobs", func() bool {
		var open int
		err := conn.QueryRow(context.Background(), `SELECT count(*) FROM river_job
			WHERE kind IN ('operation', 'backup', 'base_backup') AND state IN ('running', 'available', 'retryable')`).Scan(&open)
		return err == nil && open == 0
	})
}

// diffLines returns the lines of after that are not in before and the other
// way round, for a readable failure.
func diffLines(before, after string) string {
	b, a := strings.Split(before, "\n"), strings.Split(after, "\n")
	var out []string
	for _, l := range b {
		if !slices.Contains(a, l) {
			out = append(out, "- "+l)
		}
	}
	for _, l := range a {
		if !slices.Contains(b, l) {
			out = append(out, "+ "+l)
		}
	}
	return strings.Join(out, "\n")
}

// etcdPut writes key = value through etcd's v3 JSON gateway.
func etcdPut(key, value string) error {
	return etcdPost("put", map[string]any{
		"key": base64.StdEncoding.EncodeToString([]byte(key)), "value": base64.StdEncoding.EncodeToString([]byte(value)),
	}, nil)
}
