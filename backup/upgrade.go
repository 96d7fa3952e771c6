package backup

import (
	"context"
	"errors"

	nomadjobs "github.com/pgbroker/pgbroker/nomad-jobs"
)

// UpgradePhase is one phase of a single-node instance's major upgrade
// (upgrade.nomad.hcl): "check", "upgrade" or "finish".
type UpgradePhase string

// The phases, in the order the provisioner runs them.
const (
	UpgradeCheck  UpgradePhase = "check"   // pg_upgrade --check against the live cluster
	UpgradeRun    UpgradePhase = "upgrade" // pg_upgrade --link on the stopped cluster, the new one moved into place
	UpgradeFinish UpgradePhase = "finish"  // ALTER EXTENSION ... UPDATE, vacuumdb, the old cluster deleted
)

// UpgradeJobID names the batch job of one phase of the major upgrade
// operationID.
func UpgradeJobID(short string, phase UpgradePhase, operationID string) string {
	return "pg-" + short + "-upgrade-" + string(phase) + "-" + operationID
}

// Upgrade runs phase of the major upgrade operationID of in (a single node,
// its data on client in.NodeID) from the binaries in oldBin to those in
// newBin (major newMajor) as the batch job UpgradeJobID, with the
// instance's admin password in the job's Variable, and purges job and
// Variable. The job lives with the dumps' and base backups' because it runs
// the same way (runBatch): a job registered before a broker restart is
// waited for, never doubled, and each phase finds from the files where an
// earlier run stopped, so pg_upgrade never runs on an upgraded cluster.
// Errors: *nomad.JobFailedError when the phase failed, its Stderr ending
// with the reason (pg_upgrade's, for check and upgrade); others are worth
// retrying.
func (b *Backups) Upgrade(ctx context.Context, in Instance, operationID string, phase UpgradePhase, oldBin, newBin string, newMajor int) error {
	if in.NodeID == "" {
		return errors.New("the instance's data has no recorded client: a major upgrade needs it")
	}
	return b.runBatch(ctx, in.ShortID, batchJob{
		src: nomadjobs.Upgrade, jobID: UpgradeJobID(in.ShortID, phase, operationID), task: "upgrade",
		vars: func(context.Context) (map[string]any, error) {
			vars := batchVars(b.cfg, in.ShortID)
			vars["data_root"] = b.cfg.DataRoot
			vars["node_id"] = in.NodeID
			vars["phase"] = string(phase)
			vars["old_bin_dir"], vars["new_bin_dir"] = oldBin, newBin
			vars["new_major"] = newMajor
			return vars, nil
		},
	})
}
