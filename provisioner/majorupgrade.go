package provisioner

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/hashicorp/nomad/api"

	"github.com/pgbroker/pgbroker/backup"
	"github.com/pgbroker/pgbroker/crashpoint"
	"github.com/pgbroker/pgbroker/naming"
	"github.com/pgbroker/pgbroker/nomad"
	"github.com/pgbroker/pgbroker/pgversion"
)

// UpgradeRefusedError: pg_upgrade refused or failed before the new cluster
// ever started; the instance runs its old version as before. Reason is
// pg_upgrade's, for the user.
type UpgradeRefusedError struct {
	Checked bool   // true: pg_upgrade --check refused, nothing was stopped
	Reason  string // the end of the phase's standard error
}

func (e *UpgradeRefusedError) Error() string { return e.Reason }

// UpgradeMajor moves a single-node instance from the major of from to the
// newer major of to (from and to differ in PostgresVersion only) with
// pg_upgrade, keeping its data, roles, DATABASE_URL and gateway (issue 15
// "Major upgrade"), as operation operationID:
//  1. pg_upgrade --check against the live cluster (a new cluster initdb'd with
//     its encoding, locale and checksum setting);
//  2. the node job is stopped and its allocation waited for;
//  3. pg_upgrade --link into that new cluster, which then replaces the data
//     directory (the old one is kept aside);
//  4. the node job is registered on to's binaries and waited for, until
//     PostgreSQL answers through the gateway (a node job that runs them
//     already, registered by an earlier attempt, skips steps 1 to 3);
//  5. ALTER EXTENSION ... UPDATE in every database, vacuumdb --all
//     --analyze-in-stages, and the old data directory is deleted.
//
// When the clients' pgBackRest does not know to's major
// (pgversion.Archived), the node job archives no WAL from then on.
// Each step is idempotent and finds from the data directory where an earlier
// run stopped (backup.Upgrade), so a run interrupted anywhere (a broker
// killed, an attempt timed out) is finished by running it again, without a
// second pg_upgrade. Errors:
// *UpgradeRefusedError when pg_upgrade refused (step 1: nothing stopped) or
// failed (step 3: the old cluster is put back and its node job started
// again); others are worth retrying.
func (p *Provisioner) UpgradeMajor(ctx context.Context, from, to Instance, size Size, operationID string, progress Progress) error {
	if size.HA() {
		return errors.New("a major upgrade of a cluster is not supported")
	}
	oldVersion, err := pgversion.Parse(from.PostgresVersion)
	if err != nil {
		return fmt.Errorf("the instance's version: %w", err)
	}
	newVersion, err := pgversion.Parse(to.PostgresVersion)
	if err != nil {
		return fmt.Errorf("the target version: %w", err)
	}
	oldBin, ok1 := p.cfg.PostgresBinDirs[oldVersion.String()]
	newBin, ok2 := p.cfg.PostgresBinDirs[newVersion.String()]
	if !ok1 || !ok2 {
		return fmt.Errorf("PostgreSQL %s or %s is not among the versions configured (PGBROKER_POSTGRES_VERSIONS)", oldVersion, newVersion)
	}
	in := backupOf(to)
	phase := func(ph backup.UpgradePhase) error {
		err := p.backups.Upgrade(ctx, in, operationID, ph, oldBin, newBin, newVersion.Major)
		var failed *nomad.JobFailedError
		if errors.As(err, &failed) && ph != backup.UpgradeFinish {
			// The job's last line of standard error is "upgrade: <reason>".
			reason := failed.Stderr
			if i := strings.LastIndex(reason, "upgrade: "); i >= 0 {
				reason = reason[i+len("upgrade: "):]
			}
			if reason == "" {
				reason = failed.Error()
			}
			return &UpgradeRefusedError{Checked: ph == backup.UpgradeCheck, Reason: reason}
		}
		return err
	}

	on, stopped, err := p.nodeState(ctx, to.ShortID, newBin)
	if err != nil {
		return err
	}
	if !on {
		if err := p.upgradeStopped(ctx, from, size, oldVersion, newVersion, stopped, phase, progress); err != nil {
			return err
		}
	}
	progress(fmt.Sprintf("starting the node on PostgreSQL %s", newVersion))
	if err := p.startNode(ctx, to, size, progress); err != nil {
		return err
	}
	crashpoint.Hit("upgrade:started")
	progress("updating extensions and analyzing (vacuumdb --analyze-in-stages)")
	return phase(backup.UpgradeFinish)
}

// upgradeStopped runs UpgradeMajor's steps 1 to 3: the check, the stop,
// pg_upgrade. A node job stopped already was stopped by an earlier attempt
// after its check passed: the check is not run again (pg_upgrade of that
// attempt may be running, its temporary servers in the data directory).
// A failure of pg_upgrade starts the old cluster again.
func (p *Provisioner) upgradeStopped(ctx context.Context, from Instance, size Size, oldVersion, newVersion pgversion.Version,
	stopped bool, phase func(backup.UpgradePhase) error, progress Progress) error {
	if !stopped {
		progress(fmt.Sprintf("checking the cluster with pg_upgrade --check for PostgreSQL %s", newVersion))
		if err := phase(backup.UpgradeCheck); err != nil {
			return err
		}
		crashpoint.Hit("upgrade:checked")
		progress("stopping the node")
		if err := p.stopNode(ctx, from.ShortID); err != nil {
			return err
		}
	}
	crashpoint.Hit("upgrade:stopped")
	progress(fmt.Sprintf("upgrading the cluster to PostgreSQL %s with pg_upgrade --link", newVersion))
	if err := phase(backup.UpgradeRun); err != nil {
		var refused *UpgradeRefusedError
		if errors.As(err, &refused) {
			progress(fmt.Sprintf("pg_upgrade failed: starting PostgreSQL %s again", oldVersion))
			if rerr := p.startNode(ctx, from, size, progress); rerr != nil {
				return fmt.Errorf("pg_upgrade failed (%s), and starting the old cluster again failed: %w", refused.Reason, rerr)
			}
		}
		return err
	}
	crashpoint.Hit("upgrade:upgraded")
	return nil
}

// nodeState reports whether the node job of instance short is registered,
// not stopped, on the binaries in binDir (its start script names them: an
// earlier attempt of the upgrade got as far as starting the new major, and
// stopping the node again would gain nothing), and whether it is stopped
// (an earlier attempt stopped it, after the check passed).
func (p *Provisioner) nodeState(ctx context.Context, short, binDir string) (on, stopped bool, err error) {
	job, err := p.nomad.Job(ctx, naming.NodesJobID(short))
	if nomad.IsNotFound(err) {
		return false, false, nil
	}
	if err != nil {
		return false, false, err
	}
	if job.Stop != nil && *job.Stop {
		return false, true, nil
	}
	for _, tg := range job.TaskGroups {
		for _, task := range tg.Tasks {
			for _, tmpl := range task.Templates {
				if tmpl.EmbeddedTmpl != nil && strings.Contains(*tmpl.EmbeddedTmpl, "bin='"+binDir+"'\n") {
					return true, false, nil
				}
			}
		}
	}
	return false, false, nil
}

// stopNode stops the node job of instance short (kept registered, not
// purged) and waits until its allocations stopped: PostgreSQL shut down.
func (p *Provisioner) stopNode(ctx context.Context, short string) error {
	jobID := naming.NodesJobID(short)
	allocs, err := p.nomad.Allocations(ctx, jobID, false)
	if err != nil {
		return err
	}
	if err := p.nomad.Stop(ctx, jobID); err != nil && !nomad.IsNotFound(err) {
		return err
	}
	var ids []string
	for _, a := range allocs {
		if a.ClientStatus != api.AllocClientStatusComplete && a.ClientStatus != api.AllocClientStatusFailed && a.ClientStatus != api.AllocClientStatusLost {
			ids = append(ids, a.ID)
		}
	}
	return p.nomad.WaitStopped(ctx, ids)
}

// startNode registers the node job of in on size and waits until
// PostgreSQL answers through the gateway.
func (p *Provisioner) startNode(ctx context.Context, in Instance, size Size, progress Progress) error {
	nodes, err := p.jobs.Nodes(in, size)
	if err != nil {
		return err
	}
	version, err := p.nomad.Register(ctx, nodes)
	if err != nil {
		return err
	}
	if _, err := p.nomad.WaitRunning(ctx, naming.NodesJobID(in.ShortID), version, size.Nodes, "postgres", "node", progress); err != nil {
		return err
	}
	admin, err := p.conn.InstanceAdmin(ctx, in)
	if err != nil {
		return err
	}
	return p.conn.WaitReady(ctx, admin, progress)
}
