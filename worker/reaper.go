package worker

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"time"

	"github.com/riverqueue/river"

	"github.com/pgbroker/pgbroker/provisioner"
	"github.com/pgbroker/pgbroker/store"
)

// Orphans is what the reaper needs of the provisioner.
type Orphans interface {
	OwnedJobs(ctx context.Context) ([]provisioner.OwnedJob, error)
	RemoveOrphan(ctx context.Context, short string) error
	RemoveBatchJob(ctx context.Context, jobID string) error
}

// ReapArgs is the periodic River job that sweeps orphan Nomad jobs. River
// runs periodic jobs on its elected leader only, so several brokers sweep once.
type ReapArgs struct{}

// Kind names the job kind in River's table.
func (ReapArgs) Kind() string { return "reap_orphans" }

// InsertOpts: a failed sweep waits for the next one. (Uniqueness would keep
// later sweeps out for as long as a completed one is retained, so none.)
func (ReapArgs) InsertOpts() river.InsertOpts {
	return river.InsertOpts{MaxAttempts: 1}
}

type reaper struct {
	river.WorkerDefaults[ReapArgs]
	store      *store.Store
	orphans    Orphans
	deployment string // this deployment's identity (Config.Deployment)
	grace      time.Duration
	log        *slog.Logger
}

// Work sweeps the jobs whose Meta names this broker, with rules that delete
// data only on a record that says so (issue 12, hole 3):
//   - a job of another deployment (another identity in its Meta: a second
//     deployment with the same PGBROKER_BROKER_NAME, or this broker pointed
//     at another state database), or of none (registered before identities
//     existed), is never touched;
//   - a job of an instance whose deprovisioning the state database records
//     (its tombstone) is removed with the instance's data directory, stanza
//     and secrets once the grace period passed since it was first seen;
//   - a batch job (dump, restore, base backup) whose run is over is removed
//     with its Variable after the grace period;
//   - a job of an instance the state database does not know at all means
//     the database is older than Nomad's view (restored from a backup, an
//     empty database): nothing of it is touched, the log says so and
//     /readyz reports it (SweepCheck) until the database knows it again.
func (r *reaper) Work(ctx context.Context, _ *river.Job[ReapArgs]) error {
	jobs, err := r.orphans.OwnedJobs(ctx)
	if err != nil {
		return err
	}
	records, err := r.store.Orphans().InstanceRecords(ctx)
	if err != nil {
		return err
	}
	var orphanIDs, unknown []string
	shortOf := map[string]string{}
	batch := map[string]bool{}
	foreign := 0
	for _, j := range jobs {
		if j.Deployment != r.deployment {
			foreign++
			continue
		}
		if j.Batch != "" {
			active, err := r.store.Orphans().RunActive(ctx, j.Batch, j.RunID)
			if err != nil {
				return err
			}
			if !active {
				orphanIDs = append(orphanIDs, j.ID)
				batch[j.ID] = true
			}
			continue
		}
		switch gone, known := records[j.ShortID]; {
		case !known:
			if !slices.Contains(unknown, j.ShortID) {
				unknown = append(unknown, j.ShortID)
			}
		case gone:
			orphanIDs = append(orphanIDs, j.ID)
			shortOf[j.ID] = j.ShortID
		}
	}
	if foreign > 0 {
		r.log.Info("jobs named for this broker but registered by another deployment (or before deployments had an identity) are left alone",
			slog.Int("jobs", foreign))
	}
	if err := r.store.Orphans().RecordSweepRefusal(ctx, refusal(unknown)); err != nil {
		return err
	}
	if len(unknown) > 0 {
		r.log.Error("orphan sweep refused: "+refusal(unknown), slog.Any("instances", unknown))
	}
	return r.remove(ctx, orphanIDs, shortOf, batch)
}

// refusal says why instances unknown to the state database are left
// alone; "" when there are none.
func refusal(unknown []string) string {
	if len(unknown) == 0 {
		return ""
	}
	shown := unknown[:min(len(unknown), 5)]
	return fmt.Sprintf("Nomad runs %d instance(s) of this deployment that the state database does not know (%s): "+
		"it looks older than Nomad's view (restored from an older backup?); their jobs and data are left alone until it knows them again",
		len(unknown), strings.Join(shown, ", "))
}

// remove removes the orphans first seen more than the grace period ago:
// an instance's job with the instance's jobs, data directory and secrets
// (only tombstoned instances get here); a batch job alone, with its
// variable.
func (r *reaper) remove(ctx context.Context, orphanIDs []string, shortOf map[string]string, batch map[string]bool) error {
	seen, err := r.store.Orphans().SeeOrphans(ctx, orphanIDs)
	if err != nil {
		return err
	}
	removed := map[string]bool{}
	for _, id := range orphanIDs {
		first := seen[id]
		due := first.Add(r.grace)
		log := r.log.With(slog.String("job_id", id), slog.Time("first_seen", first), slog.Time("removal_due", due))
		if batch[id] {
			if time.Now().Before(due) {
				log.Warn("orphan Nomad batch job: its run is over")
				continue
			}
			log.Warn("removing orphan Nomad batch job and its variable")
			if err := r.orphans.RemoveBatchJob(ctx, id); err != nil {
				log.Error("remove orphan batch job", slog.String("error", err.Error()))
			}
			continue
		}
		if time.Now().Before(due) {
			log.Warn("orphan Nomad job: its instance is deprovisioned")
			continue
		}
		if removed[shortOf[id]] {
			continue
		}
		log.Warn("removing the orphan Nomad job of a deprovisioned instance, with its data and secrets")
		if err := r.orphans.RemoveOrphan(ctx, shortOf[id]); err != nil {
			log.Error("remove orphan", slog.String("error", err.Error()))
			continue
		}
		removed[shortOf[id]] = true
	}
	return nil
}

// SweepCheck is a /readyz check: it fails with the orphan sweep's refusal
// (store.SweepRefusal) while one was recorded within three sweep intervals
// (every, Config.ReapInterval) and a minute.
func SweepCheck(st *store.Store, every time.Duration) func(context.Context) error {
	return func(ctx context.Context) error {
		reason, at, err := st.Orphans().SweepRefusal(ctx)
		if err != nil {
			return err
		}
		if reason != "" && time.Since(at) < 3*every+time.Minute {
			return errors.New(reason)
		}
		return nil
	}
}
