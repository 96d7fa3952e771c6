package backup

import (
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"strconv"
	"strings"
	"time"

	"github.com/hashicorp/nomad/api"

	"github.com/pgbroker/pgbroker/naming"
)

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
func (b *Backups) standbySource(ctx context.Context, short string) (src standbySource, ok bool, err error) {
	regs, err := b.nomad.Services(ctx, naming.NodeService(short))
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
		case primary == nil && b.patroniAnswers(ctx, short, base, "/primary"):
			primary = r
		case standby == nil && b.patroniAnswers(ctx, short, base, "/replica"):
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
	if src.primary, err = b.registeredNode(ctx, primary); err != nil {
		return src, false, err
	}
	if src.standby, err = b.registeredNode(ctx, standby); err != nil {
		return src, false, err
	}
	src.host, src.port = primary.Address, port
	if err := b.hooks.EnsureServerCertificate(ctx, short); err != nil {
		return src, false, err
	}
	return src, true, b.waitPgBackRestServer(ctx, short, src.host, src.port)
}

// waitPgBackRestServer waits (1 minute at most) until the pgBackRest TLS
// server of instance short at host:port completes a handshake: it presents
// a certificate from the broker's CA naming host (one just issued reaches it
// when Nomad has re-rendered it and restarted the server task), and the
// broker presents a short-lived client certificate of the base backup CN.
func (b *Backups) waitPgBackRestServer(ctx context.Context, short, host string, port int) error {
	ca := b.hooks.CA()
	now := time.Now()
	certPEM, keyPEM, err := ca.IssueClient(baseBackupClientCN(short), now.Add(5*time.Minute), now)
	if err != nil {
		return err
	}
	pair, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		return fmt.Errorf("client certificate: %w", err)
	}
	addr := net.JoinHostPort(host, strconv.Itoa(port))
	cfg := &tls.Config{RootCAs: ca.Pool(), ServerName: host, Certificates: []tls.Certificate{pair}, MinVersion: tls.VersionTLS12}
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
