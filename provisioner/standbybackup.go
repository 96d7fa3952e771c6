package provisioner

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"
	"time"

	"github.com/hashicorp/nomad/api"

	"github.com/pgbroker/pgbroker/pki"
)

// Items of the node job's Nomad Variable for pgBackRest's TLS server, which
// each Business node runs (nodes.nomad.hcl, task "pgbackrest"), and of a
// base backup job's Variable for its client certificate.
const (
	itemPgBackRestServerCertificate = "pgbackrest_server_certificate"
	itemPgBackRestServerPrivateKey  = "pgbackrest_server_private_key"
	itemPgBackRestClientCertificate = "pgbackrest_client_certificate"
	itemPgBackRestClientPrivateKey  = "pgbackrest_client_private_key"
)

// baseBackupClientCN is the CN of the client certificate a base backup job
// of instance short presents to the primary's pgBackRest TLS server, which
// admits that CN for short's stanza only (tls-server-auth).
func baseBackupClientCN(short string) string { return "pgbroker-basebackup-" + short }

// clientCertificateLifetime bounds a base backup job's client certificate.
const clientCertificateLifetime = 24 * time.Hour

// pgBackRestServer is a node's pgBackRest TLS server, from the node
// service's tag pgbackrest=<port>.
func pgBackRestServer(r *api.ServiceRegistration) (port int, ok bool) {
	for _, t := range r.Tags {
		if v, found := strings.CutPrefix(t, "pgbackrest="); found {
			p, err := strconv.Atoi(v)
			return p, err == nil && p > 0
		}
	}
	return 0, false
}

// ensurePgBackRestServerCertificate makes sure the node Variable of
// instance short holds a certificate for the nodes' pgBackRest TLS server
// naming the node service and every address in hosts (IP addresses also as
// DNS SANs: pgBackRest 2.45 checks only those), signed by the current CA and
// not due for renewal; otherwise it issues one (fresh key). The nodes
// re-render it and restart their server task. Reports whether it issued.
// Errors: Nomad's; no CA loaded.
func (p *Provisioner) ensurePgBackRestServerCertificate(ctx context.Context, short string, hosts []string) (bool, error) {
	if p.ca == nil {
		return false, errors.New("issue the pgBackRest server certificate: the broker has no CA (LoadCA was not called)")
	}
	hosts = append([]string{NodeService(short)}, hosts...)
	issued := false
	var ierr error
	_, err := p.updateSecret(ctx, nodesSecretPath(short), func(items api.VariableItems) bool {
		issued = false
		if !p.certificateNeeded(items[itemPgBackRestServerCertificate], hosts) {
			return false
		}
		now := time.Now()
		certPEM, keyPEM, err := p.ca.Issue(pki.ServerRequest{CommonName: NodeService(short), Hosts: hosts,
			NotAfter: now.Add(p.cfg.CertLifetime), IPsAsDNS: true}, now)
		if err != nil {
			ierr = err
			return false
		}
		items[itemPgBackRestServerCertificate], items[itemPgBackRestServerPrivateKey] = string(certPEM), string(keyPEM)
		issued = true
		return true
	})
	if err == nil {
		err = ierr
	}
	return issued && err == nil, err
}

// nodeAddresses returns the addresses of the instance's registered nodes.
func (p *Provisioner) nodeAddresses(ctx context.Context, short string) ([]string, error) {
	regs, err := p.nomad.Services(ctx, NodeService(short))
	if err != nil {
		return nil, err
	}
	var hosts []string
	for _, r := range regs {
		hosts = append(hosts, r.Address)
	}
	return hosts, nil
}

// standbySource is where a base backup from a standby reads.
type standbySource struct {
	standby backupNode // the job runs on its client and copies its files
	primary backupNode // pg_backup_start/stop run there, through its pgBackRest TLS server
	host    string     // the primary's address
	port    int        // its pgBackRest TLS server's port
}

// standbySource finds a Business instance's leader and a standby that
// streams from it (Patroni: OPTIONS /primary and /replica answer 200), and
// makes sure the leader's pgBackRest TLS server presents a certificate for
// its address. ok is false when there is no such pair (a lone leader, a
// failover in progress, a node job without the server): the base backup
// then reads the leader itself.
func (p *Provisioner) standbySource(ctx context.Context, in Instance) (src standbySource, ok bool, err error) {
	regs, err := p.nomad.Services(ctx, NodeService(in.ShortID))
	if err != nil {
		return src, false, err
	}
	var primary, standby *api.ServiceRegistration
	for _, r := range regs {
		base := patroniAPI(r)
		if base == "" {
			return src, false, nil
		}
		switch {
		case primary == nil && patroniAnswers(ctx, base, "/primary"):
			primary = r
		case standby == nil && patroniAnswers(ctx, base, "/replica"):
			standby = r
		}
	}
	if primary == nil || standby == nil {
		return src, false, nil
	}
	port, found := pgBackRestServer(primary)
	if !found {
		return src, false, nil
	}
	if src.primary, err = p.registeredNode(ctx, primary); err != nil {
		return src, false, err
	}
	if src.standby, err = p.registeredNode(ctx, standby); err != nil {
		return src, false, err
	}
	src.host, src.port = primary.Address, port
	hosts, err := p.nodeAddresses(ctx, in.ShortID)
	if err != nil {
		return src, false, err
	}
	if _, err := p.ensurePgBackRestServerCertificate(ctx, in.ShortID, hosts); err != nil {
		return src, false, err
	}
	return src, true, p.waitPgBackRestServer(ctx, in.ShortID, src.host, src.port)
}

// registeredNode reads the node index of a node service registration.
func (p *Provisioner) registeredNode(ctx context.Context, r *api.ServiceRegistration) (backupNode, error) {
	alloc, err := p.nomad.Allocation(ctx, r.AllocID)
	if err != nil {
		return backupNode{}, err
	}
	index, err := nodeIndex(alloc.Name)
	if err != nil {
		return backupNode{}, err
	}
	return backupNode{ClientID: r.NodeID, Index: index, Port: r.Port}, nil
}

// waitPgBackRestServer waits (1 minute at most) until the pgBackRest TLS
// server of instance short at host:port completes a handshake: it presents
// a certificate from the broker's CA naming host (one just issued reaches it
// when Nomad has re-rendered it and restarted the server task), and the
// broker presents a short-lived client certificate of the base backup CN.
func (p *Provisioner) waitPgBackRestServer(ctx context.Context, short, host string, port int) error {
	now := time.Now()
	certPEM, keyPEM, err := p.ca.IssueClient(baseBackupClientCN(short), now.Add(5*time.Minute), now)
	if err != nil {
		return err
	}
	pair, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		return fmt.Errorf("client certificate: %w", err)
	}
	addr := net.JoinHostPort(host, strconv.Itoa(port))
	cfg := &tls.Config{RootCAs: p.ca.Pool(), ServerName: host, Certificates: []tls.Certificate{pair}, MinVersion: tls.VersionTLS12}
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	var last error
	for {
		d := tls.Dialer{NetDialer: &net.Dialer{Timeout: 2 * time.Second}, Config: cfg}
		conn, err := d.DialContext(ctx, "tcp", addr)
		if err == nil {
			conn.Close()
			return nil
		}
		last = err
		select {
		case <-ctx.Done():
			return fmt.Errorf("the pgBackRest server of the primary at %s does not present a certificate for it: %w", addr, last)
		case <-time.After(250 * time.Millisecond):
		}
	}
}
