package backup

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/hashicorp/nomad/api"

	"github.com/pgbroker/pgbroker/naming"
	"github.com/pgbroker/pgbroker/nomad"
)

// PITRTimeFormat is how a restore target reaches pgBackRest (--target), in UTC.
const PITRTimeFormat = "2006-01-02 15:04:05.000000+00"

// RestoreVars are the node job variables (nodes.nomad.hcl) that have its
// start script run the point-in-time restore restoreID: pgbackrest restore
// --set=set --type=time --target=target, from the stanza of source when it
// is another instance's ("": the instance's own).
func RestoreVars(restoreID, source, set string, target time.Time) map[string]any {
	vars := map[string]any{"pitr_restore_id": restoreID, "pitr_set": set, "pitr_target": target.UTC().Format(PITRTimeFormat)}
	if source != "" {
		vars["pitr_source"] = source
	}
	return vars
}

// pgbackrest is the start of every pgBackRest command run in the node task:
// its rendered configuration (secrets/pgbackrest.conf, which may hold the S3
// keys; local/pgbackrest.conf in node jobs registered before it moved) and
// the instance's stanza. The admin password reaches libpq as PGPASSWORD from
// the task's own environment (rendered from the job's Nomad Variable); it is
// never part of the command.
func pgbackrest(short string) string {
	return `export PGPASSWORD="$PGBROKER_ADMIN_PASSWORD"; conf="$NOMAD_SECRETS_DIR/pgbackrest.conf"; [[ -f $conf ]] || conf="$NOMAD_TASK_DIR/pgbackrest.conf"; ` +
		`c=(--config="$conf" --stanza=` + short + `); pgbackrest "${c[@]}"`
}

// CreateStanza runs pgbackrest stanza-create for instance short on its
// (leading) node, so archive_command succeeds from the first WAL segment.
// Idempotent (stanza-create accepts an existing stanza). Errors:
// *nomad.ExecError from pgBackRest; others are worth retrying.
func (b *Backups) CreateStanza(ctx context.Context, short string) error {
	_, err := b.execNode(ctx, short, "set -euo pipefail; "+pgbackrest(short)+" stanza-create >/dev/null")
	return err
}

// BaseBackupInfo is one base backup in the instance's stanza (pgbackrest
// --output=json info: backup[]).
type BaseBackupInfo struct {
	Label string    // label
	Type  string    // type: "full", "diff" or "incr"
	Start time.Time // timestamp.start, whole seconds
	Stop  time.Time // timestamp.stop, whole seconds: the earliest time a restore from it reaches
}

// ArchiveAndChooseSet has the running node of instance short archive its
// latest WAL (pgbackrest check) and returns the label of the base backup a
// restore to target starts from (chooseSet). Errors: *nomad.ExecError from
// pgBackRest, also when the stanza has no base backup; others are worth
// retrying.
func (b *Backups) ArchiveAndChooseSet(ctx context.Context, short string, target time.Time) (string, error) {
	out, err := b.execNode(ctx, short,
		"set -euo pipefail; "+pgbackrest(short)+" check; "+pgbackrest(short)+" --output=json info")
	if err != nil {
		return "", err
	}
	backups, err := parseInfo(out)
	if err != nil {
		return "", err
	}
	if len(backups) == 0 {
		return "", &nomad.ExecError{Stderr: "the stanza of " + short + " has no base backup"}
	}
	return chooseSet(backups, target), nil
}

// chooseSet returns the latest of backups (pgBackRest's order, oldest
// first) that had surely ended by target, else the oldest: the broker
// refuses targets before the first base backup ended, in microseconds;
// pgBackRest's info has whole seconds and its own choice wants stop <
// target in whole seconds, so a target in the second the only base backup
// ended would fail.
func chooseSet(backups []BaseBackupInfo, target time.Time) string {
	set := backups[0].Label
	for _, b := range backups {
		if !b.Stop.Add(time.Second).After(target) {
			set = b.Label
		}
	}
	return set
}

// parseInfo reads the base backups of pgbackrest --output=json info, in
// its order. Errors: output that is not its JSON.
func parseInfo(out string) ([]BaseBackupInfo, error) {
	var stanzas []struct {
		Backup []struct {
			Label     string `json:"label"`
			Type      string `json:"type"`
			Timestamp struct {
				Start int64 `json:"start"`
				Stop  int64 `json:"stop"`
			} `json:"timestamp"`
		} `json:"backup"`
	}
	if err := json.Unmarshal([]byte(out), &stanzas); err != nil {
		return nil, fmt.Errorf("decode pgbackrest info: %w", err)
	}
	var list []BaseBackupInfo
	for _, s := range stanzas {
		for _, b := range s.Backup {
			list = append(list, BaseBackupInfo{Label: b.Label, Type: b.Type,
				Start: time.Unix(b.Timestamp.Start, 0).UTC(), Stop: time.Unix(b.Timestamp.Stop, 0).UTC()})
		}
	}
	return list, nil
}

// execNode runs script with bash in the running node task of instance
// short that leads (alloc exec, as the task's user with the task's
// environment) and returns its standard output. Errors: *nomad.ExecError
// when script failed; others when no node runs or leads (worth retrying).
func (b *Backups) execNode(ctx context.Context, short, script string) (string, error) {
	allocs, err := b.nomad.Allocations(ctx, naming.NodesJobID(short), false)
	if err != nil {
		return "", err
	}
	var lastErr error = errors.New("no running node allocation to run pgBackRest in")
	for _, stub := range allocs {
		if stub.ClientStatus != api.AllocClientStatusRunning || stub.DesiredStatus != api.AllocDesiredStatusRun {
			continue
		}
		out, err := b.nomad.Exec(ctx, stub.ID, "postgres", leaderOnly+script)
		var ee *nomad.ExecError
		if errors.As(err, &ee) && ee.Code == notLeaderCode {
			lastErr = errors.New("no node allocation is the Patroni leader (a failover in progress?)")
			continue
		}
		return out, err
	}
	return "", lastErr
}

// notLeaderCode is the exit code of leaderOnly on a Patroni standby.
const notLeaderCode = 75

// leaderOnly starts every script execNode runs: under Patroni (Business),
// only the leader runs it (pgBackRest backs up and checks the primary);
// a standby exits notLeaderCode and the next allocation is tried. It asks
// the node's own REST API (TLS only) as the broker does: the certificate
// checked by the broker's CA and the node service's name, pg-<short>-node
// (the job's id less its final "s"), resolved to the API's address.
const leaderOnly = `if [[ -f $NOMAD_SECRETS_DIR/patroni.yml ]]; then name=${NOMAD_JOB_ID%s}; ` +
	`if [[ $(curl -s -o /dev/null -w '%{http_code}' --cacert "$NOMAD_TASK_DIR/broker-ca.pem" --resolve "$name:$NOMAD_PORT_api:$NOMAD_IP_api" ` +
	`-X OPTIONS "https://$name:$NOMAD_PORT_api/primary") != 200 ]]; then echo "not the Patroni leader" >&2; exit 75; fi; fi; `
