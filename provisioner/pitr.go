package provisioner

import (
	"context"
	"fmt"
	"time"

	"github.com/hashicorp/nomad/api"

	"github.com/pgbroker/pgbroker/backup"
	"github.com/pgbroker/pgbroker/crashpoint"
	"github.com/pgbroker/pgbroker/naming"
	"github.com/pgbroker/pgbroker/nomad"
	"github.com/pgbroker/pgbroker/pgadmin"
)

// MetaPITRRestore is the node job Meta key naming the point-in-time restore
// the job version carries out (the operation id).
const MetaPITRRestore = naming.MetaPITRRestore

// RestoreToTime brings the instance back to its state at target (UTC,
// microseconds): it has the running node archive its latest WAL (pgbackrest
// check), then registers the node job with the restore, whose start script
// runs pgbackrest restore --delta --type=time before PostgreSQL starts, and
// waits until PostgreSQL has replayed WAL up to target and promoted. The
// instance is down meanwhile.
//
// A Business instance (size.HA) first becomes a single node (toSingle:
// node-0 leads, the standbys stop and their data is deleted), is restored
// like a Starter one, then becomes a cluster again (toCluster: Patroni
// adopts the restored node-0, new standbys clone it). The restore happens
// once per restoreID: the node job's Meta names it until the cluster is
// made again, and from then on the marker file the start script leaves in
// the restored data directory does (restoreMarked), so a retry after a crash
// never restores twice or undoes writes made since. Errors: *ExecError when
// pgBackRest failed; others are worth retrying.
func (p *Provisioner) RestoreToTime(ctx context.Context, in Instance, size Size, restoreID string, target time.Time, progress Progress) error {
	jobID := naming.NodesJobID(in.ShortID)
	cur, err := p.nomad.Job(ctx, jobID)
	if err != nil {
		return err
	}
	single := size
	single.Nodes = 1
	if cur.Meta[MetaPITRRestore] != restoreID {
		if size.HA() {
			restored, err := p.restoreMarked(ctx, in, restoreID)
			if err != nil {
				return err
			}
			if restored {
				return p.clusterAgain(ctx, in, size, progress)
			}
			placed, err := p.tiers.ToSingle(ctx, in, single, progress)
			if err != nil {
				return err
			}
			in.NodeID = placed.NodeID
			crashpoint.Hit("pitr:single")
		}
		if cur, err = p.registerRestore(ctx, in, single, restoreID, target, progress); err != nil {
			return err
		}
	}
	progress("restoring to " + target.UTC().Format(time.RFC3339Nano))
	if _, err := p.nomad.WaitRunning(ctx, jobID, *cur.Version, single.Nodes, "postgres", "node", progress); err != nil {
		return err
	}
	admin, err := p.conn.InstanceAdmin(ctx, in)
	if err != nil {
		return err
	}
	if err := p.conn.WaitReady(ctx, admin, progress); err != nil {
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
	return p.clusterAgain(ctx, in, size, progress)
}

// registerRestore has the running single node of in archive its latest WAL,
// chooses the base backup, and registers the node job of size (one node)
// restoring to target, Meta pgbroker_pitr_restore = restoreID. It returns
// the registered job.
func (p *Provisioner) registerRestore(ctx context.Context, in Instance, size Size, restoreID string, target time.Time, progress Progress) (*api.Job, error) {
	progress("archiving the latest WAL")
	set, err := p.backups.ArchiveAndChooseSet(ctx, in.ShortID, target)
	if err != nil {
		return nil, err
	}
	if err := p.jobs.EnsurePITRKeys(ctx, in.ShortID); err != nil {
		return nil, err
	}
	job, err := p.jobs.NodesWith(in, size, backup.RestoreVars(restoreID, "", set, target))
	if err != nil {
		return nil, err
	}
	job.Meta[MetaPITRRestore] = restoreID
	if _, err := p.nomad.Register(ctx, job); err != nil {
		return nil, err
	}
	crashpoint.Hit("pitr:registered")
	// Registered before a restart or just now: wait for that job version.
	cur, err := p.nomad.Job(ctx, naming.NodesJobID(in.ShortID))
	if err != nil {
		return nil, err
	}
	return cur, nil
}

// clusterAgain makes the restored single node-0 of a Business instance a
// cluster of size again (toCluster, pinned to node-0's client).
func (p *Provisioner) clusterAgain(ctx context.Context, in Instance, size Size, progress Progress) error {
	node0, err := p.jobs.AllocNode(ctx, naming.NodesJobID(in.ShortID), 0)
	if err != nil {
		return err
	}
	in.NodeID = node0
	return p.tiers.ToCluster(ctx, in, size, progress)
}

// restoreMarked reports whether the data directory of the server the
// instance's gateway reaches (the Patroni leader on Business) holds the
// marker of restore restoreID, which the start script writes once pgBackRest
// restored (nodes.nomad.hcl) and which clones carry along. Errors: the
// instance does not answer (worth retrying).
func (p *Provisioner) restoreMarked(ctx context.Context, in Instance, restoreID string) (bool, error) {
	admin, err := p.conn.InstanceAdmin(ctx, in)
	if err != nil {
		return false, err
	}
	found, err := admin.HasDataFile(ctx, "pgbroker-pitr-"+restoreID)
	if err != nil {
		return false, fmt.Errorf("look for the marker of restore %s: %w", restoreID, err)
	}
	return found, nil
}

// ExecError: a command run in the node task exited non-zero.
type ExecError = nomad.ExecError

// RestoreRegistered reports whether the instance's node job was registered
// for the point-in-time restore restoreID (job Meta pgbroker_pitr_restore),
// or, once the node job runs Patroni, whether its data holds that restore
// (restoreMarked; a copy on a Business plan made a cluster again): the
// restore is under way or done. False when the job does not exist. Errors:
// Nomad or, with Patroni, the instance does not answer.
func (p *Provisioner) RestoreRegistered(ctx context.Context, in Instance, restoreID string) (bool, error) {
	cur, err := p.nomad.Job(ctx, naming.NodesJobID(in.ShortID))
	if isNotFound(err) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	if cur.Meta[MetaPITRRestore] == restoreID {
		return true, nil
	}
	if cur.Meta[MetaPatroni] != "true" {
		return false, nil
	}
	// A copy on a Business plan is made a cluster once restored and
	// adopted, and its node job no longer names the restore.
	return p.restoreMarked(ctx, in, restoreID)
}

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
func (p *Provisioner) RestoreFromStanza(ctx context.Context, in Instance, size Size, source, restoreID string, target time.Time, progress Progress) error {
	jobID := naming.NodesJobID(in.ShortID)
	cur, err := p.nomad.Job(ctx, jobID)
	if err != nil {
		return err
	}
	single := size
	single.Nodes = 1
	if cur.Meta[MetaPITRRestore] != restoreID && cur.Meta[MetaPatroni] == "true" {
		// Made a cluster again after its restore (below), or never restored.
		restored, err := p.restoreMarked(ctx, in, restoreID)
		if err != nil {
			return err
		}
		if !restored {
			return fmt.Errorf("the node job of %s runs Patroni but its data holds no restore %s", in.ShortID, restoreID)
		}
		return p.clusterAgain(ctx, in, size, progress)
	}
	if cur.Meta[MetaPITRRestore] != restoreID {
		progress("archiving the latest WAL of the source instance")
		set, err := p.backups.ArchiveAndChooseSet(ctx, source, target)
		if err != nil {
			return fmt.Errorf("archive the latest WAL of the source: %w", err)
		}
		progress("restoring the source instance's stanza to " + target.UTC().Format(time.RFC3339Nano))
		if err := p.jobs.EnsurePITRKeys(ctx, in.ShortID); err != nil {
			return err
		}
		job, err := p.jobs.NodesWith(in, single, backup.RestoreVars(restoreID, source, set, target))
		if err != nil {
			return err
		}
		job.Meta[MetaPITRRestore] = restoreID
		if _, err := p.nomad.Register(ctx, job); err != nil {
			return err
		}
		crashpoint.Hit("pitr:registered")
		cur, err = p.nomad.Job(ctx, jobID)
		if err != nil {
			return err
		}
	}
	if _, err := p.nomad.WaitRunning(ctx, jobID, *cur.Version, single.Nodes, "postgres", "node", progress); err != nil {
		return err
	}
	own, err := p.conn.ReadSecret(ctx, naming.NodesSecretPath(in.ShortID), "admin_password")
	if err != nil {
		return err
	}
	// Until adopted, the cluster knows the source's admin password only.
	theirs, err := p.conn.ReadSecret(ctx, naming.NodesSecretPath(source), "admin_password")
	if err != nil {
		return err
	}
	host, err := p.conn.GatewayAddress(ctx, in.ShortID)
	if err != nil {
		return err
	}
	progress("replaying the source's WAL up to " + target.UTC().Format(time.RFC3339))
	var admin AdminConn
	for {
		for _, password := range []string{own, theirs} {
			a := p.conn.At(host, in, password)
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
	if err := p.backups.CreateStanza(ctx, in.ShortID); err != nil {
		return fmt.Errorf("create the stanza of the copy: %w", err)
	}
	if !size.HA() {
		return nil
	}
	crashpoint.Hit("pitr:restored")
	return p.clusterAgain(ctx, in, size, progress)
}
