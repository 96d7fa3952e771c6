package provisioner

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/hashicorp/nomad/api"

	nomadjobs "github.com/pgbroker/pgbroker/nomad-jobs"
)

// BaseBackupJobID names the batch job of one base backup.
func BaseBackupJobID(short, baseBackupID string) string {
	return "pg-" + short + "-basebackup-" + baseBackupID
}

// BaseBackup takes a full pgBackRest base backup of the instance (creating
// its stanza first when needed) as the batch job
// pg-<short>-basebackup-<baseBackupID> on the Nomad client of the node that
// takes writes (primaryNode; a standby on Business, below), and returns the new backup's label, read from
// the job's standard output (pgbackrest --output=json info). Idempotent and
// crash-safe: a job of that id registered before a restart is waited for,
// never run twice at once; job and variable are purged before it returns.
// Errors: *JobFailedError when pgBackRest failed (with the end of its
// standard error); others (no leader during a failover, Nomad unreachable,
// output unreadable) are worth retrying.
//
// On a Business instance (Patroni) with a streaming standby the job runs on
// the standby's client instead and copies the standby's files (pgBackRest
// backup-standby, issue #4 item 2: "a standby on Business"); only
// pg_backup_start/stop run on the leader, through its pgBackRest TLS server
// (standbySource). A lone leader is backed up itself.
func (p *Provisioner) BaseBackup(ctx context.Context, in Instance, baseBackupID string) (string, error) {
	if !p.pitr() {
		return "", errors.New("no pgBackRest repository is configured")
	}
	secrets, cluster, err := p.baseBackupSecrets(ctx, in)
	if err != nil {
		return "", err
	}
	var label string
	err = p.runBatch(ctx, in, batchJob{
		src: nomadjobs.BaseBackup, jobID: BaseBackupJobID(in.ShortID, baseBackupID), task: "basebackup",
		secrets: secrets,
		vars: func(ctx context.Context) (map[string]any, error) {
			vars := p.commonVars(in.ShortID)
			delete(vars, "host_network")
			vars["data_root"] = p.cfg.DataRoot
			vars["postgres_uid"] = p.cfg.PostgresUID
			vars["postgres_gid"] = p.cfg.PostgresGID
			p.setPITRVars(vars)
			if cluster {
				src, ok, err := p.standbySource(ctx, in)
				if err != nil {
					return nil, err
				}
				if ok {
					vars["node_id"], vars["node_index"], vars["pg_port"] = src.standby.ClientID, src.standby.Index, src.standby.Port
					vars["primary_host"], vars["primary_pgbackrest_port"] = src.host, src.port
					vars["primary_node_index"], vars["primary_pg_port"] = src.primary.Index, src.primary.Port
					vars["broker_ca"] = string(p.ca.CertPEM)
					return vars, nil
				}
			}
			node, err := p.primaryNode(ctx, in)
			if err != nil {
				return nil, err
			}
			vars["node_id"], vars["node_index"], vars["pg_port"] = node.ClientID, node.Index, node.Port
			return vars, nil
		},
		output: func(ctx context.Context, allocID string) error {
			out, err := p.taskLog(ctx, allocID, "basebackup", "stdout", 4<<20)
			if err != nil {
				return err
			}
			backups, err := parseInfo(string(out))
			if err != nil {
				return err
			}
			if len(backups) == 0 {
				return errors.New("pgBackRest's info lists no base backup")
			}
			label = backups[len(backups)-1].Label
			return nil
		},
	})
	return label, err
}

// baseBackupSecrets returns the items of a base backup job's Variable
// besides the admin password: the S3 keys of the repository, and on a
// Business instance (cluster true) a client certificate for the primary's
// pgBackRest TLS server (CN baseBackupClientCN, clientCertificateLifetime).
func (p *Provisioner) baseBackupSecrets(ctx context.Context, in Instance) (api.VariableItems, bool, error) {
	secrets := api.VariableItems{}
	maps.Copy(secrets, p.pitrSecrets())
	job, err := p.nomad.Job(ctx, NodesJobID(in.ShortID))
	if err != nil {
		return nil, false, err
	}
	if job.Meta[MetaPatroni] != "true" || p.ca == nil {
		return secrets, false, nil
	}
	now := time.Now()
	certPEM, keyPEM, err := p.ca.IssueClient(baseBackupClientCN(in.ShortID), now.Add(clientCertificateLifetime), now)
	if err != nil {
		return nil, false, err
	}
	secrets[itemPgBackRestClientCertificate], secrets[itemPgBackRestClientPrivateKey] = string(certPEM), string(keyPEM)
	return secrets, true, nil
}

// backupNode is the node a base backup reads.
type backupNode struct {
	ClientID string // Nomad client node ID it runs on
	Index    int    // its node index (task group node-<index>): data in node-<index>, socket in run-<index>
	Port     int    // its PostgreSQL port
}

// primaryNode finds the instance's node that takes writes among the node
// service registrations in Nomad: the one without a Patroni REST API
// (Starter; on in.NodeID when that is recorded), or the one whose Patroni
// REST API answers OPTIONS /primary with 200 (Business: the leader).
// Errors when none is registered or no Patroni node leads (a failover in
// progress): worth retrying.
func (p *Provisioner) primaryNode(ctx context.Context, in Instance) (backupNode, error) {
	regs, err := p.nomad.Services(ctx, NodeService(in.ShortID))
	if err != nil {
		return backupNode{}, err
	}
	for _, r := range regs {
		if base := patroniAPI(r); base != "" {
			if !isPatroniPrimary(ctx, base) {
				continue
			}
		} else if in.NodeID != "" && r.NodeID != in.NodeID {
			continue
		}
		return p.registeredNode(ctx, r)
	}
	if len(regs) == 0 {
		return backupNode{}, errors.New("no node of the instance is registered in Nomad")
	}
	return backupNode{}, errors.New("no registered node of the instance is the primary (a failover in progress?)")
}

// isPatroniPrimary reports whether the Patroni REST API at base answers
// OPTIONS /primary with 200 (its node leads; the health endpoints need no
// authentication).
func isPatroniPrimary(ctx context.Context, base string) bool {
	return patroniAnswers(ctx, base, "/primary")
}

// standbyClient returns the Nomad client of a running standby of a Business
// instance (its Patroni answers OPTIONS /replica with 200), "" when none
// does (a lone leader, a failover in progress).
func (p *Provisioner) standbyClient(ctx context.Context, short string) (string, error) {
	regs, err := p.nomad.Services(ctx, NodeService(short))
	if err != nil {
		return "", err
	}
	for _, r := range regs {
		if base := patroniAPI(r); base != "" && patroniAnswers(ctx, base, "/replica") {
			return r.NodeID, nil
		}
	}
	return "", nil
}

// patroniAnswers reports whether the Patroni REST API at base answers
// OPTIONS path (a health endpoint: /primary, /replica) with 200.
func patroniAnswers(ctx context.Context, base, path string) bool {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodOptions, base+path, nil)
	if err != nil {
		return false
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return false
	}
	resp.Body.Close()
	return resp.StatusCode == http.StatusOK
}

// nodeIndex returns the node index of an allocation of a node job from its
// name, "<job>.node-<index>[0]" (one task group per node, nodes.nomad.hcl).
func nodeIndex(name string) (int, error) {
	dot, open := strings.LastIndexByte(name, '.'), strings.LastIndexByte(name, '[')
	if dot < 0 || open < dot {
		return 0, fmt.Errorf("allocation name %q is not <job>.node-<index>[0]", name)
	}
	digits, ok := strings.CutPrefix(name[dot+1:open], "node-")
	i, err := strconv.Atoi(digits)
	if !ok || err != nil || i < 0 {
		return 0, fmt.Errorf("allocation name %q is not <job>.node-<index>[0]", name)
	}
	return i, nil
}
