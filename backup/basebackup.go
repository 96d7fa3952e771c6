package backup

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"strconv"
	"strings"
	"time"

	"github.com/hashicorp/nomad/api"

	"github.com/pgbroker/pgbroker/naming"
	nomadjobs "github.com/pgbroker/pgbroker/nomad-jobs"
	"github.com/pgbroker/pgbroker/patroni"
)

// BaseBackup takes a full pgBackRest base backup of the instance (creating
// its stanza first when needed) as the batch job
// BaseBackupJobID(short, baseBackupID) on the Nomad client of the node that
// takes writes (primaryNode; a standby on Business, below), and returns the
// new backup's label, read from the job's standard output (pgbackrest
// --output=json info). Idempotent and crash-safe: a job of that id
// registered before a restart is waited for, never run twice at once; job
// and variable are purged before it returns. Errors: *nomad.JobFailedError
// when pgBackRest failed (with the end of its standard error); others (no
// leader during a failover, Nomad unreachable, output unreadable) are worth
// retrying.
//
// On a Business instance (Patroni) with a streaming standby the job runs on
// the standby's client instead and copies the standby's files (pgBackRest
// backup-standby); only pg_backup_start/stop run on the leader, through its
// pgBackRest TLS server (standbySource). A lone leader is backed up itself.
func (b *Backups) BaseBackup(ctx context.Context, in Instance, baseBackupID string) (string, error) {
	if !b.Repository().On() {
		return "", errors.New("no pgBackRest repository is configured")
	}
	secrets, cluster, err := b.baseBackupSecrets(ctx, in.ShortID)
	if err != nil {
		return "", err
	}
	var label string
	err = b.runBatch(ctx, in.ShortID, batchJob{
		src: nomadjobs.BaseBackup, jobID: BaseBackupJobID(in.ShortID, baseBackupID), task: "basebackup",
		secrets: secrets,
		vars:    func(ctx context.Context) (map[string]any, error) { return b.baseBackupVars(ctx, in, cluster) },
		output: func(ctx context.Context, allocID string) (err error) {
			label, err = b.latestLabel(ctx, allocID)
			return err
		},
	})
	return label, err
}

// baseBackupVars are the variables of basebackup.nomad.hcl: on the standby
// of standbySource when cluster and there is one, else on the primary.
func (b *Backups) baseBackupVars(ctx context.Context, in Instance, cluster bool) (map[string]any, error) {
	vars := batchVars(b.cfg, in.ShortID)
	vars["data_root"] = b.cfg.DataRoot
	vars["postgres_uid"], vars["postgres_gid"] = b.cfg.PostgresUID, b.cfg.PostgresGID
	b.Repository().SetVars(vars)
	if cluster {
		src, ok, err := b.standbySource(ctx, in.ShortID)
		if err != nil {
			return nil, err
		}
		if ok {
			vars["node_id"], vars["node_index"], vars["pg_port"] = src.standby.ClientID, src.standby.Index, src.standby.Port
			vars["primary_host"], vars["primary_pgbackrest_port"] = src.host, src.port
			vars["primary_node_index"], vars["primary_pg_port"] = src.primary.Index, src.primary.Port
			vars["broker_ca"] = string(b.hooks.CA().CertPEM)
			return vars, nil
		}
	}
	node, err := b.primaryNode(ctx, in)
	if err != nil {
		return nil, err
	}
	vars["node_id"], vars["node_index"], vars["pg_port"] = node.ClientID, node.Index, node.Port
	return vars, nil
}

// latestLabel reads the label of the newest base backup from what the base
// backup task of allocation allocID wrote on its standard output.
func (b *Backups) latestLabel(ctx context.Context, allocID string) (string, error) {
	out, err := b.nomad.TaskLog(ctx, allocID, "basebackup", "stdout", 4<<20)
	if err != nil {
		return "", err
	}
	backups, err := parseInfo(string(out))
	if err != nil {
		return "", err
	}
	if len(backups) == 0 {
		return "", errors.New("pgBackRest's info lists no base backup")
	}
	return backups[len(backups)-1].Label, nil
}

// Items of a base backup job's Nomad Variable for its client certificate
// to the primary's pgBackRest TLS server.
const (
	itemPgBackRestClientCertificate = "pgbackrest_client_certificate"
	itemPgBackRestClientPrivateKey  = "pgbackrest_client_private_key"
)

// baseBackupClientCN is the CN of the client certificate a base backup job
// of instance short presents to the primary's pgBackRest TLS server, which
// admits that CN for short's stanza only (tls-server-auth).
func baseBackupClientCN(short string) string { return "pgbroker-basebackup-" + short }

// clientCertificateLifetime bounds a base backup job's client certificate.
const clientCertificateLifetime = 24 * time.Hour

// baseBackupSecrets returns the items of a base backup job's Variable
// besides the admin password: the S3 keys of the repository, and on a
// Business instance (cluster true) a client certificate for the primary's
// pgBackRest TLS server (CN baseBackupClientCN, clientCertificateLifetime).
func (b *Backups) baseBackupSecrets(ctx context.Context, short string) (api.VariableItems, bool, error) {
	secrets := api.VariableItems{}
	maps.Copy(secrets, b.Repository().Secrets())
	job, err := b.nomad.Job(ctx, naming.NodesJobID(short))
	if err != nil {
		return nil, false, err
	}
	ca := b.hooks.CA()
	if job.Meta[naming.MetaPatroni] != "true" || ca == nil {
		return secrets, false, nil
	}
	now := time.Now()
	certPEM, keyPEM, err := ca.IssueClient(baseBackupClientCN(short), now.Add(clientCertificateLifetime), now)
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
func (b *Backups) primaryNode(ctx context.Context, in Instance) (backupNode, error) {
	regs, err := b.nomad.Services(ctx, naming.NodeService(in.ShortID))
	if err != nil {
		return backupNode{}, err
	}
	for _, r := range regs {
		if base := patroniAPI(r); base != "" {
			if !b.patroniAnswers(ctx, in.ShortID, base, "/primary") {
				continue
			}
		} else if in.NodeID != "" && r.NodeID != in.NodeID {
			continue
		}
		return b.registeredNode(ctx, r)
	}
	if len(regs) == 0 {
		return backupNode{}, errors.New("no node of the instance is registered in Nomad")
	}
	return backupNode{}, errors.New("no registered node of the instance is the primary (a failover in progress?)")
}

// standbyClient returns the Nomad client of a running standby of a Business
// instance (its Patroni answers OPTIONS /replica with 200), "" when none
// does (a lone leader, a failover in progress).
func (b *Backups) standbyClient(ctx context.Context, short string) (string, error) {
	regs, err := b.nomad.Services(ctx, naming.NodeService(short))
	if err != nil {
		return "", err
	}
	for _, r := range regs {
		if base := patroniAPI(r); base != "" && b.patroniAnswers(ctx, short, base, "/replica") {
			return r.NodeID, nil
		}
	}
	return "", nil
}

// patroniAPI returns the Patroni REST API base URL of a node service
// registration, "" when it has none (no Patroni).
func patroniAPI(r *api.ServiceRegistration) string { return patroni.APIBase(r.Address, r.Tags) }

// patroniAnswers reports whether the Patroni REST API at base, a member
// of instance short, answers OPTIONS path (/primary, /replica) with 200,
// over TLS verified as Hooks.NodeTLS says.
func (b *Backups) patroniAnswers(ctx context.Context, short, base, path string) bool {
	return patroni.Answers(ctx, base, path, b.hooks.NodeTLS(short))
}

// registeredNode reads the node index of a node service registration.
func (b *Backups) registeredNode(ctx context.Context, r *api.ServiceRegistration) (backupNode, error) {
	alloc, err := b.nomad.Allocation(ctx, r.AllocID)
	if err != nil {
		return backupNode{}, err
	}
	index, err := nodeIndex(alloc.Name)
	if err != nil {
		return backupNode{}, err
	}
	return backupNode{ClientID: r.NodeID, Index: index, Port: r.Port}, nil
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
