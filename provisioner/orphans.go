package provisioner

import (
	"context"
	"maps"
	"regexp"
	"slices"
	"sort"
)

var ownedJobID = regexp.MustCompile(`^pg-([0-9a-f]{12})-(?:(nodes|gateways|cleanup)|(dump|restore|basebackup)-([0-9a-z-]{1,64}))$`)

// OwnedJob is a Nomad job whose Meta names this broker (PGBROKER_BROKER_NAME).
type OwnedJob struct {
	ID      string // Nomad job id
	ShortID string // the instance's short id, from the job id
	// Deployment is the deployment identity its Meta holds (naming.MetaDeployment):
	// Config.Deployment for this deployment's jobs; another one for a
	// deployment that reuses the name (or this broker on another state
	// database); "" for jobs registered before identities existed.
	Deployment string
	// Batch is the kind of a batch job ("dump", "restore", "basebackup");
	// "" for the instance's own jobs (nodes, gateways, cleanup).
	Batch string
	RunID string // of a batch job: the backup, operation or base backup id it carries out
}

// OwnedJobs lists the jobs whose Meta names this broker and whose id has
// the shape of an instance job or of a batch job, with the deployment
// identity they carry, sorted by id.
func (p *Provisioner) OwnedJobs(ctx context.Context) ([]OwnedJob, error) {
	jobs, err := p.nomad.JobIDs(ctx, "pg-")
	if err != nil {
		return nil, err
	}
	var out []OwnedJob
	for id, owner := range jobs {
		m := ownedJobID.FindStringSubmatch(id)
		if m == nil || owner.Broker != p.cfg.BrokerName {
			continue
		}
		out = append(out, OwnedJob{ID: id, ShortID: m[1], Batch: m[3], RunID: m[4], Deployment: owner.Deployment})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out, nil
}

// RemoveOrphan removes everything of the instance short: its jobs, its data
// directory (on the node its node job ran on) and its secrets.
func (p *Provisioner) RemoveOrphan(ctx context.Context, short string) error {
	return p.Deprovision(ctx, Instance{ShortID: short}, func(string) {})
}

// RemoveBatchJob purges the batch job jobID (a dump, restore or base backup
// whose run is over) and deletes its Nomad Variable nomad/jobs/<jobID>, as
// a backup batch job does itself once its run ended. Errors: Nomad errors.
func (p *Provisioner) RemoveBatchJob(ctx context.Context, jobID string) error {
	if err := p.nomad.Purge(ctx, jobID); err != nil {
		return err
	}
	return p.nomad.DeleteVariable(ctx, "nomad/jobs/"+jobID)
}

// purgeBatchJobs purges the instance's dump, restore and base backup jobs
// that still run or linger (a base backup started just before the
// deprovision). Errors: Nomad's.
func purgeBatchJobs(ctx context.Context, n jobs, short string) error {
	jobs, err := n.JobIDs(ctx, "pg-"+short+"-")
	if err != nil {
		return err
	}
	for _, id := range slices.Sorted(maps.Keys(jobs)) {
		if m := ownedJobID.FindStringSubmatch(id); m == nil || m[3] == "" {
			continue // not a batch job of the instance
		}
		if err := n.Purge(ctx, id); err != nil {
			return err
		}
	}
	return nil
}
