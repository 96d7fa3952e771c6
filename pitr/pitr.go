// Package pitr carries out point-in-time restores with pgBackRest: an
// instance back to a moment of its own past (RestoreToTime), or a freshly
// provisioned instance made a copy of another one as it was at a moment
// (RestoreFromStanza). A Business instance is restored as a single node,
// then made a cluster again (package tiers). Each restore happens once per
// restore id, however often it is run again after a crash
// (RestoreRegistered says whether it is under way or done). It reaches
// Nomad, the backups, the instance's jobs, its PostgreSQL and the tier
// changes through small interfaces it declares.
package pitr

import (
	"context"
	"fmt"
	"time"

	"github.com/hashicorp/nomad/api"

	"github.com/pgbroker/pgbroker/adminconn"
	"github.com/pgbroker/pgbroker/backup"
	"github.com/pgbroker/pgbroker/crashpoint"
	"github.com/pgbroker/pgbroker/instance"
	"github.com/pgbroker/pgbroker/naming"
	"github.com/pgbroker/pgbroker/nomad"
	"github.com/pgbroker/pgbroker/pgadmin"
)

// Nomad is what restores need of Nomad (nomad.Cluster): the node job.
type Nomad interface {
	Job(ctx context.Context, jobID string) (*api.Job, error)
	Register(ctx context.Context, job *api.Job) (uint64, error)
	WaitRunning(ctx context.Context, jobID string, version uint64, count int, task, what string, progress func(step string)) ([]*api.AllocationListStub, error)
}

// Backups is what restores need of pgBackRest (backup.Backups).
type Backups interface {
	ArchiveAndChooseSet(ctx context.Context, short string, target time.Time) (string, error)
	CreateStanza(ctx context.Context, short string) error
}

// Jobs renders the node job with a restore's variables and keeps its
// prerequisites (instancejobs.Jobs).
type Jobs interface {
	NodesWith(in instance.Instance, s instance.Size, extra map[string]any) (*api.Job, error)
	EnsurePITRKeys(ctx context.Context, short string) error
	AllocNode(ctx context.Context, jobID string, index int) (string, error)
}

// Conn is the instance's superuser connection and passwords (adminconn.Connector).
type Conn interface {
	GatewayAddress(ctx context.Context, short string) (string, error)
	At(host string, in instance.Instance, password string) adminconn.AdminConn
	InstanceAdmin(ctx context.Context, in instance.Instance) (adminconn.AdminConn, error)
	WaitReady(ctx context.Context, admin adminconn.AdminConn, progress instance.Progress) error
	ReadSecret(ctx context.Context, path, key string) (string, error)
}

// Tiers turns a Business instance into a single node and back (tiers.Changer).
type Tiers interface {
	ToSingle(ctx context.Context, in instance.Instance, size instance.Size, progress instance.Progress) (instance.Placement, error)
	ToCluster(ctx context.Context, in instance.Instance, size instance.Size, progress instance.Progress) error
}

// Restorer carries out point-in-time restores. Safe for concurrent use on
// different instances.
type Restorer struct {
	nomad   Nomad
	backups Backups
	jobs    Jobs
	conn    Conn
	tiers   Tiers
}

// New returns a Restorer working through the given adapters.
func New(n Nomad, backups Backups, jobs Jobs, conn Conn, tiers Tiers) *Restorer {
	return &Restorer{nomad: n, backups: backups, jobs: jobs, conn: conn, tiers: tiers}
}

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
