package provisioner

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"os"
	"regexp"
	"time"

	"github.com/hashicorp/nomad/api"

	"github.com/pgbroker/pgbroker/naming"
	"github.com/pgbroker/pgbroker/pki"
)

// Items of the node job's Nomad Variable (nomad/jobs/pg-<short>-nodes) that
// nodes.nomad.hcl renders besides the passwords.
const (
	itemServerCertificate = "server_certificate" // PEM, issued by the broker's CA
	itemServerPrivateKey  = "server_private_key" // PEM (PKCS #8)
	itemForceTLS          = "force_tls"          // "true": pg_hba.conf allows TLS connections only
)

// caLifetime is how long a CA the broker makes itself stays valid.
const caLifetime = 10 * 365 * 24 * time.Hour

var brokerNameForPath = regexp.MustCompile(`^[A-Za-z0-9_-]{1,64}$`)

// caSecretPath holds the CA the broker made: items certificate and private_key (PEM).
func caSecretPath(brokerName string) string { return "pgbroker/" + brokerName + "/ca" }

// LoadCA sets the CA that signs instances' server certificates: read from
// PEM files when certFile is set (PGBROKER_CA_CERT_FILE and
// PGBROKER_CA_KEY_FILE), else the Nomad Variable pgbroker/<broker name>/ca,
// made at first start and created check-and-set so that replicas sharing the
// broker name agree on one CA. The private key never leaves Nomad (or the
// file). Errors name the file or the Variable.
func (p *Provisioner) LoadCA(ctx context.Context, certFile, keyFile string) error {
	now := time.Now()
	if certFile != "" {
		certPEM, err := os.ReadFile(certFile)
		if err != nil {
			return fmt.Errorf("read PGBROKER_CA_CERT_FILE: %w", err)
		}
		keyPEM, err := os.ReadFile(keyFile)
		if err != nil {
			return fmt.Errorf("read PGBROKER_CA_KEY_FILE: %w", err)
		}
		ca, err := pki.ParseCA(certPEM, keyPEM, now)
		if err != nil {
			return fmt.Errorf("PGBROKER_CA_CERT_FILE and PGBROKER_CA_KEY_FILE: %w", err)
		}
		p.ca = ca
		return nil
	}
	if !brokerNameForPath.MatchString(p.cfg.BrokerName) {
		return fmt.Errorf("PGBROKER_BROKER_NAME %q must be 1 to 64 letters, digits, _ or - (it names the CA's Nomad Variable)", p.cfg.BrokerName)
	}
	path := caSecretPath(p.cfg.BrokerName)
	items, err := p.nomad.Variable(ctx, path)
	if errors.Is(err, api.ErrVariablePathNotFound) {
		certPEM, keyPEM, genErr := pki.NewCA(p.cfg.BrokerName+" instances CA", caLifetime, now)
		if genErr != nil {
			return genErr
		}
		// Created, or another replica won the race: what is there counts.
		items, err = p.nomad.EnsureVariable(ctx, path, map[string]string{"certificate": string(certPEM), "private_key": string(keyPEM)})
	}
	if err != nil {
		return fmt.Errorf("CA in Nomad Variable %s: %w", path, err)
	}
	ca, err := pki.ParseCA([]byte(items["certificate"]), []byte(items["private_key"]), now)
	if err != nil {
		return fmt.Errorf("CA in Nomad Variable %s: %w", path, err)
	}
	p.ca = ca
	return nil
}

// CACertificate returns the CA certificate (PEM), what credentials carry as
// ca_certificate. Empty before LoadCA.
func (p *Provisioner) CACertificate() string {
	if p.ca == nil {
		return ""
	}
	return string(p.ca.CertPEM)
}

// certificateHosts are the names a server certificate must carry: the node
// service name, and the host credentials give (PGBROKER_PUBLIC_HOST, else
// gatewayHost once the gateway is placed; "" when not known yet).
func (p *Provisioner) certificateHosts(short string, gatewayHosts ...string) []string {
	hosts := []string{naming.NodeService(short)}
	if p.cfg.PublicHost != "" {
		return append(hosts, p.cfg.PublicHost)
	}
	return append(hosts, gatewayHosts...)
}

// ensureServerCertificate makes sure the node Variable holds a server
// certificate signed by the current CA, naming every one of hosts, and valid
// for longer than CertRenewBefore; otherwise it issues a new one (fresh key)
// and writes it check-and-set. The node's template re-renders and SIGHUPs
// PostgreSQL, which loads it without a restart. It returns the certificate in
// force and whether it was (re)issued.
func (p *Provisioner) ensureServerCertificate(ctx context.Context, short string, hosts []string) (cert string, issued bool, err error) {
	if p.ca == nil {
		return "", false, errors.New("issue server certificate: the broker has no CA (LoadCA was not called)")
	}
	items, err := p.nomad.UpdateVariable(ctx, naming.NodesSecretPath(short), func(items api.VariableItems) bool {
		if !p.certificateNeeded(items[itemServerCertificate], hosts) {
			return false
		}
		now := time.Now()
		certPEM, keyPEM, ierr := p.ca.Issue(pki.ServerRequest{CommonName: naming.NodeService(short), Hosts: hosts, NotAfter: now.Add(p.cfg.CertLifetime)}, now)
		if ierr != nil {
			err = ierr
			return false
		}
		items[itemServerCertificate], items[itemServerPrivateKey] = string(certPEM), string(keyPEM)
		if _, ok := items[itemForceTLS]; !ok {
			items[itemForceTLS] = "false"
		}
		issued = true
		return true
	})
	if err != nil {
		return "", false, err
	}
	return items[itemServerCertificate], issued, nil
}

// certificateNeeded reports whether certPEM must be replaced.
func (p *Provisioner) certificateNeeded(certPEM string, hosts []string) bool {
	cert, err := pki.ParseCertificate([]byte(certPEM))
	if err != nil || !p.ca.Signed(cert) || time.Until(cert.NotAfter) < p.cfg.CertRenewBefore {
		return true
	}
	for _, h := range hosts {
		if !pki.Covers(cert, h) {
			return true
		}
	}
	return false
}

// adminTLS is how the broker's own connections check an instance's server:
// a chain to the broker's CA and the instance's node service name.
func (p *Provisioner) adminTLS(short string) *tls.Config {
	if p.ca == nil {
		return nil
	}
	return &tls.Config{MinVersion: tls.VersionTLS12, RootCAs: p.ca.Pool(), ServerName: naming.NodeService(short)}
}

// RenewCertificate re-issues the instance's server certificate when it
// expires within CertRenewBefore, was signed by another CA, or no longer names
// the host credentials give (the gateway moved), then waits until PostgreSQL
// serves it. Reports whether it renewed. Idempotent.
func (p *Provisioner) RenewCertificate(ctx context.Context, in Instance) (bool, error) {
	var hosts []string
	if p.cfg.PublicHost == "" {
		var err error
		if hosts, err = p.conn.GatewayAddresses(ctx, in.ShortID); err != nil {
			return false, err
		}
	}
	cert, issued, err := p.ensureServerCertificate(ctx, in.ShortID, p.certificateHosts(in.ShortID, hosts...))
	if err != nil || !issued {
		return false, err
	}
	admin, err := p.conn.InstanceAdmin(ctx, in)
	if err != nil {
		return true, err
	}
	return true, p.waitServing(ctx, admin, cert)
}
