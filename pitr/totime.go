package pitr

import (
	"context"
	"fmt"
	"time"

	"github.com/hashicorp/nomad/api"

	"github.com/pgbroker/pgbroker/backup"
	"github.com/pgbroker/pgbroker/crashpoint"
	"github.com/pgbroker/pgbroker/instance"
	"github.com/pgbroker/pgbroker/naming"
	"github.com/pgbroker/pgbroker/nomad"
)

// RestoreToTime brings the instance back to its state at target (UTC,
// microseconds): it has the running node archive its latest WAL (pgbackrest
// check), then registers the node job with the restore, whose start script
// runs pgbackrest restore --delta --type=time before PostgreSQL starts, and
// waits until PostgreSQL has replayed WAL up to target and promoted. The
// instance is down meanwhile.
//
// A Business instance (size.HA) first becomes a single node (tiers.Changer.ToSingle:
// node-0 leads, the standbys stop and their data is deleted), is restored
// like a Starter one, then becomes a cluster again (tiers.Changer.ToCluster: Patroni
// adopts the restored node-0, new standbys clone it). The restore happens
// once per restoreID: the node job's Meta names it until the cluster is
// made again, and from then on the marker file the start script leaves in
// the restored data directory does (restoreMarked), so a retry after a crash
// never restores twice or undoes writes made since. Errors: *ExecError when
// pgBackRest failed; others are worth retrying.
func (r *Restorer) RestoreToTime(ctx context.Context, in instance.Instance, size instance.Size, restoreID string, target time.Time, progress instance.Progress) error {
	jobID := naming.NodesJobID(in.ShortID)
	cur, err := r.nomad.Job(ctx, jobID)
	if err != nil {
		return err
	}
	single := size
	single.Nodes = 1
	if cur.Meta[naming.MetaPITRRestore] != restoreID {
		if size.HA() {
			restored, err := r.restoreMarked(ctx, in, restoreID)
			if err != nil {
				return err
			}
			if restored {
				return r.clusterAgain(ctx, in, size, progress)
			}
			placed, err := r.tiers.ToSingle(ctx, in, single, progress)
			if err != nil {
				return err
			}
			in.NodeID = placed.NodeID
			crashpoint.Hit("pitr:single")
		}
		if cur, err = r.registerRestore(ctx, in, single, restoreID, target, progress); err != nil {
			return err
		}
	}
	progress("restoring to " + target.UTC().Format(time.RFC3339Nano))
	if _, err := r.nomad.WaitRunning(ctx, jobID, *cur.Version, single.Nodes, "postgres", "node", progress); err != nil {
		return err
	}
	admin, err := r.conn.InstanceAdmin(ctx, in)
	if err != nil {
		return err
	}
	if err := r.conn.WaitReady(ctx, admin, progress); err != nil {
		return err
	}
	progress("replaying WAL up to " + target.UTC().Format(time.RFC3339))
	for {
		attempt, cancel := context.WithTimeout(ctx, 2*time.Second)
		recovering, err := admin.InRecovery(attempt)
		cancel()
		if err == nil && !recovering {
			break
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("PostgreSQL did not finish replaying WAL: %w", ctx.Err())
		case <-time.After(200 * time.Millisecond):
		}
	}
	if !size.HA() {
		return nil
	}
	crashpoint.Hit("pitr:restored")
	return r.clusterAgain(ctx, in, size, progress)
}

// registerRestore has the running single node of in archive its latest WAL,
// chooses the base backup, and registers the node job of size (one node)
// restoring to target, Meta pgbroker_pitr_restore = restoreID. It returns
// the registered job.
func (r *Restorer) registerRestore(ctx context.Context, in instance.Instance, size instance.Size, restoreID string, target time.Time, progress instance.Progress) (*api.Job, error) {
	progress("archiving the latest WAL")
	set, err := r.backups.ArchiveAndChooseSet(ctx, in.ShortID, target)
	if err != nil {
		return nil, err
	}
	if err := r.jobs.EnsurePITRKeys(ctx, in.ShortID); err != nil {
		return nil, err
	}
	job, err := r.jobs.NodesWith(in, size, backup.RestoreVars(restoreID, "", set, target))
	if err != nil {
		return nil, err
	}
	job.Meta[naming.MetaPITRRestore] = restoreID
	if _, err := r.nomad.Register(ctx, job); err != nil {
		return nil, err
	}
	crashpoint.Hit("pitr:registered")
	// Registered before a restart or just now: wait for that job version.
	cur, err := r.nomad.Job(ctx, naming.NodesJobID(in.ShortID))
	if err != nil {
		return nil, err
	}
	return cur, nil
}

// clusterAgain makes the restored single node-0 of a Business instance a
// cluster of size again (tiers.Changer.ToCluster, pinned to node-0's client).
func (r *Restorer) clusterAgain(ctx context.Context, in instance.Instance, size instance.Size, progress instance.Progress) error {
	node0, err := r.jobs.AllocNode(ctx, naming.NodesJobID(in.ShortID), 0)
	if err != nil {
		return err
	}
	in.NodeID = node0
	return r.tiers.ToCluster(ctx, in, size, progress)
}

// restoreMarked reports whether the data directory of the server the
// instance's gateway reaches (the Patroni leader on Business) holds the
// marker of restore restoreID, which the start script writes once pgBackRest
// restored (nodes.nomad.hcl) and which clones carry along. Errors: the
// instance does not answer (worth retrying).
func (r *Restorer) restoreMarked(ctx context.Context, in instance.Instance, restoreID string) (bool, error) {
	admin, err := r.conn.InstanceAdmin(ctx, in)
	if err != nil {
		return false, err
	}
	found, err := admin.HasDataFile(ctx, "pgbroker-pitr-"+restoreID)
	if err != nil {
		return false, fmt.Errorf("look for the marker of restore %s: %w", restoreID, err)
	}
	return found, nil
}

// RestoreRegistered reports whether the instance's node job was registered
// for the point-in-time restore restoreID (job Meta pgbroker_pitr_restore),
// or, once the node job runs Patroni, whether its data holds that restore
// (restoreMarked; a copy on a Business plan made a cluster again): the
// restore is under way or done. False when the job does not exist. Errors:
// Nomad or, with Patroni, the instance does not answer.
func (r *Restorer) RestoreRegistered(ctx context.Context, in instance.Instance, restoreID string) (bool, error) {
	cur, err := r.nomad.Job(ctx, naming.NodesJobID(in.ShortID))
	if nomad.IsNotFound(err) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	if cur.Meta[naming.MetaPITRRestore] == restoreID {
		return true, nil
	}
	if cur.Meta[naming.MetaPatroni] != "true" {
		return false, nil
	}
	// A copy on a Business plan is made a cluster once restored and
	// adopted, and its node job no longer names the restore.
	return r.restoreMarked(ctx, in, restoreID)
}
