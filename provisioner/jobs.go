package provisioner

import (
	"context"
	"time"

	"github.com/hashicorp/nomad/api"

	"github.com/pgbroker/pgbroker/extensions"
	"github.com/pgbroker/pgbroker/naming"
	nomadjobs "github.com/pgbroker/pgbroker/nomad-jobs"
)

func (p *Provisioner) commonVars(short string) map[string]any {
	return map[string]any{
		"instance":     short,
		"driver":       p.cfg.Driver,
		"datacenters":  p.cfg.Datacenters,
		"host_network": p.cfg.HostNetwork,
	}
}

// NodesJob returns the node job of an instance on plan size s.
func (p *Provisioner) NodesJob(in Instance, s Size) (*api.Job, error) {
	return p.nodesJobWith(in, s, nil)
}

// MetaPatroni is the node job Meta key saying its nodes run under Patroni.
const MetaPatroni = naming.MetaPatroni

// nodesJobWith is NodesJob with extra variables (a point-in-time restore, a
// plan change between tiers), which override the size's.
func (p *Provisioner) nodesJobWith(in Instance, s Size, extra map[string]any) (*api.Job, error) {
	vars := p.commonVars(in.ShortID)
	if s.PITRDays > 0 && p.backups.Repository().On() {
		p.backups.Repository().SetVars(vars)
	}
	vars["node_count"] = s.Nodes
	vars["memory_mib"] = s.MemoryMiB
	vars["cpu_mhz"] = s.CPUMHz
	vars["max_connections"] = s.MaxConnections
	if s.AutovacuumNaptime >= time.Second {
		vars["autovacuum_naptime_s"] = int(s.AutovacuumNaptime / time.Second)
	}
	vars["data_root"] = p.cfg.DataRoot
	vars["node_id"] = in.NodeID
	if s.HA() {
		// Patroni clones a node that starts on a new client from the leader:
		// nodes follow distinct_hosts, not the first placement.
		vars["node_id"] = ""
		vars["patroni"] = true
		vars["etcd_hosts"] = p.cfg.Etcd
	}
	vars["postgres_uid"] = p.cfg.PostgresUID
	vars["postgres_gid"] = p.cfg.PostgresGID
	vars["shared_preload_libraries"] = extensions.PreloadLibraries(in.Extensions)
	for k, v := range extra {
		vars[k] = v
	}
	if vars["patroni"] == true && p.certs.CA() != nil {
		vars["broker_ca"] = string(p.certs.CA().CertPEM) // pgBackRest's TLS server admits base backup jobs' certificates
	}
	job, err := p.nomad.Parse(nomadjobs.Nodes, naming.NodesJobID(in.ShortID), vars)
	if err != nil {
		return nil, err
	}
	if vars["patroni"] == true {
		job.Meta[MetaPatroni] = "true"
	}
	return job, nil
}

// GatewaysJob returns the gateway job of an instance on plan size s.
func (p *Provisioner) GatewaysJob(in Instance, s Size) (*api.Job, error) {
	vars := p.commonVars(in.ShortID)
	vars["gateway_count"] = s.Gateways
	vars["gateway_port"] = in.GatewayPort
	vars["gateway_cpu_mhz"] = p.cfg.GatewayCPUMHz
	vars["gateway_memory_mib"] = p.cfg.GatewayMemoryMiB
	vars["max_connections"] = s.MaxConnections
	vars["patroni"] = s.HA()
	if s.HA() {
		vars["read_only_port"] = in.ReadOnlyPort
	}
	return p.nomad.Parse(nomadjobs.Gateways, naming.GatewaysJobID(in.ShortID), vars)
}

// CleanupJob returns the batch job that deletes, on Nomad client client,
// the data directories of the node task groups groups (node-<index>) of
// instance short, or with no groups its whole data directory and stanza
// (cleanup.nomad.hcl).
func (p *Provisioner) CleanupJob(short, client string, groups []string) (*api.Job, error) {
	vars := p.commonVars(short)
	delete(vars, "host_network")
	vars["data_root"] = p.cfg.DataRoot
	vars["node_id"] = client
	vars["node_groups"] = groups
	vars["pitr_repo"] = p.cfg.PITRRepo // a directory; a stanza in S3 is deleted by Deprovision itself
	return p.nomad.Parse(nomadjobs.Cleanup, naming.CleanupJobID(short), vars)
}

// cleanData runs CleanupJob(short, client, groups), waits until it
// completed and purges it. Idempotent (deleting what is gone succeeds).
// Errors: *JobFailedError when rm failed; others are worth retrying.
func (p *Provisioner) cleanData(ctx context.Context, short, client string, groups []string) error {
	cleanup, err := p.CleanupJob(short, client, groups)
	if err != nil {
		return err
	}
	if _, err := p.nomad.Register(ctx, cleanup); err != nil {
		return err
	}
	if _, err := p.nomad.WaitComplete(ctx, naming.CleanupJobID(short), "cleanup"); err != nil {
		return err
	}
	return p.nomad.Purge(ctx, naming.CleanupJobID(short))
}
