package pitr

import (
	"context"
	"fmt"
	"time"

	"github.com/pgbroker/pgbroker/adminconn"
	"github.com/pgbroker/pgbroker/backup"
	"github.com/pgbroker/pgbroker/crashpoint"
	"github.com/pgbroker/pgbroker/instance"
	"github.com/pgbroker/pgbroker/naming"
	"github.com/pgbroker/pgbroker/pgadmin"
)

// RestoreFromStanza makes the freshly provisioned instance in a copy of
// instance source (short id) as it was at target (UTC, microseconds;
// provision parameter restore_from.point_in_time): it has source's running
// node archive its latest WAL (pgbackrest check), registers in's node job
// with the restore (its start script empties in's own stanza, then runs
// pgbackrest restore --stanza=<source> --delta --type=time into in's data
// directory), waits until PostgreSQL has replayed WAL up to target and
// promoted, then adopts the cluster (source's database and roles renamed to
// in's, source's login roles dropped, in's admin password set:
// pgadmin.AdoptCluster) and creates in's stanza, to which it archives from
// then on. The restore runs on one node; a copy on a Business plan (size.HA)
// is then made a cluster (clusterAgain), after which the marker the start
// script leaves in the data directory, not the job's Meta, names the
// restore. Idempotent: a job version already carrying restoreID is waited
// for, not replaced. Errors: *ExecError when pgBackRest failed on source;
// others are worth retrying.
func (r *Restorer) RestoreFromStanza(ctx context.Context, in instance.Instance, size instance.Size, source, restoreID string, target time.Time, progress instance.Progress) error {
	jobID := naming.NodesJobID(in.ShortID)
	cur, err := r.nomad.Job(ctx, jobID)
	if err != nil {
		return err
	}
	single := size
	single.Nodes = 1
	if cur.Meta[naming.MetaPITRRestore] != restoreID && cur.Meta[naming.MetaPatroni] == "true" {
		// Made a cluster again after its restore (below), or never restored.
		restored, err := r.restoreMarked(ctx, in, restoreID)
		if err != nil {
			return err
		}
		if !restored {
			return fmt.Errorf("the node job of %s runs Patroni but its data holds no restore %s", in.ShortID, restoreID)
		}
		return r.clusterAgain(ctx, in, size, progress)
	}
	if cur.Meta[naming.MetaPITRRestore] != restoreID {
		progress("archiving the latest WAL of the source instance")
		set, err := r.backups.ArchiveAndChooseSet(ctx, source, target)
		if err != nil {
			return fmt.Errorf("archive the latest WAL of the source: %w", err)
		}
		progress("restoring the source instance's stanza to " + target.UTC().Format(time.RFC3339Nano))
		if err := r.jobs.EnsurePITRKeys(ctx, in.ShortID); err != nil {
			return err
		}
		job, err := r.jobs.NodesWith(in, single, backup.RestoreVars(restoreID, source, set, target))
		if err != nil {
			return err
		}
		job.Meta[naming.MetaPITRRestore] = restoreID
		if _, err := r.nomad.Register(ctx, job); err != nil {
			return err
		}
		crashpoint.Hit("pitr:registered")
		cur, err = r.nomad.Job(ctx, jobID)
		if err != nil {
			return err
		}
	}
	if _, err := r.nomad.WaitRunning(ctx, jobID, *cur.Version, single.Nodes, "postgres", "node", progress); err != nil {
		return err
	}
	own, err := r.conn.ReadSecret(ctx, naming.NodesSecretPath(in.ShortID), "admin_password")
	if err != nil {
		return err
	}
	// Until adopted, the cluster knows the source's admin password only.
	theirs, err := r.conn.ReadSecret(ctx, naming.NodesSecretPath(source), "admin_password")
	if err != nil {
		return err
	}
	host, err := r.conn.GatewayAddress(ctx, in.ShortID)
	if err != nil {
		return err
	}
	progress("replaying the source's WAL up to " + target.UTC().Format(time.RFC3339))
	var admin adminconn.AdminConn
	for {
		for _, password := range []string{own, theirs} {
			a := r.conn.At(host, in, password)
			attempt, cancel := context.WithTimeout(ctx, 2*time.Second)
			recovering, err := a.InRecovery(attempt)
			cancel()
			if err == nil && !recovering {
				admin = a
				break
			}
		}
		if admin != nil {
			break
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("PostgreSQL did not finish replaying the source's WAL: %w", ctx.Err())
		case <-time.After(200 * time.Millisecond):
		}
	}
	progress("taking over the restored database")
	if err := admin.AdoptCluster(ctx, pgadmin.NamesOf(source), pgadmin.NamesOf(in.ShortID), own); err != nil {
		return fmt.Errorf("adopt the restored cluster: %w", err)
	}
	progress("creating the instance's own stanza")
	if err := r.backups.CreateStanza(ctx, in.ShortID); err != nil {
		return fmt.Errorf("create the stanza of the copy: %w", err)
	}
	if !size.HA() {
		return nil
	}
	crashpoint.Hit("pitr:restored")
	return r.clusterAgain(ctx, in, size, progress)
}
