package worker

import (
	"context"
	"log/slog"
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
	store   *store.Store
	orphans Orphans
	grace   time.Duration
	log     *slog.Logger
}

// Work reports every job carrying this broker's name whose instance is
// unknown or deprovisioned, and every batch job (dump, restore, base
// backup) whose run is no longer under way, and removes those first seen
// more than the grace period ago: an instance's job with the instance's
// jobs, data directory and secrets; a batch job alone, with its variable.
func (r *reaper) Work(ctx context.Context, _ *river.Job[ReapArgs]) error {
	jobs, err := r.orphans.OwnedJobs(ctx)
	if err != nil {
		return err
	}
	live, err := r.store.Orphans().LiveShortIDs(ctx)
	if err != nil {
		return err
	}
	var orphanIDs []string
	shortOf := map[string]string{}
	batch := map[string]bool{}
	for _, j := range jobs {
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
		if !live[j.ShortID] {
			orphanIDs = append(orphanIDs, j.ID)
			shortOf[j.ID] = j.ShortID
		}
	}
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
			log.Warn("orphan Nomad job: no instance owns it")
			continue
		}
		if removed[shortOf[id]] {
			continue
		}
		log.Warn("removing orphan Nomad job and its instance's data and secrets")
		if err := r.orphans.RemoveOrphan(ctx, shortOf[id]); err != nil {
			log.Error("remove orphan", slog.String("error", err.Error()))
			continue
		}
		removed[shortOf[id]] = true
	}
	return nil
}
