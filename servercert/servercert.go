// Package servercert is the broker's CA and the certificates it issues to
// instances: the PostgreSQL server certificate and the pgBackRest TLS
// server's, kept in the node job's Nomad Variable (nodes.nomad.hcl renders
// them), renewed before they expire or when the names they must carry
// change, and the TLS configuration the broker's own connections verify
// servers with. Force TLS (pg_hba.conf's TLS-only rules) lives in the same
// Variable. It reaches Nomad through the small interface Nomad
// (*nomad.Cluster) and an instance's server through Server (pgadmin.Admin).
package servercert

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"os"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/hashicorp/nomad/api"

	"github.com/pgbroker/pgbroker/naming"
	"github.com/pgbroker/pgbroker/pgadmin"
	"github.com/pgbroker/pgbroker/pki"
)

// Nomad is what certificates need of Nomad (nomad.Cluster): Variables,
// check-and-set, and the node service's registrations.
type Nomad interface {
	Variable(ctx context.Context, path string) (map[string]string, error)
	EnsureVariable(ctx context.Context, path string, initial map[string]string) (map[string]string, error)
	UpdateVariable(ctx context.Context, path string, change func(api.VariableItems) bool) (api.VariableItems, error)
	Services(ctx context.Context, name string) ([]*api.ServiceRegistration, error)
}

// Gateways gives the addresses an instance's gateway is registered at,
// sorted (adminconn.Connector). Errors when none is.
type Gateways interface {
	GatewayAddresses(ctx context.Context, short string) ([]string, error)
}

// Server is what certificates ask of an instance's PostgreSQL (pgadmin.Admin):
// the certificate it serves and the pg_hba.conf it loaded.
type Server interface {
	ServerCertificate(ctx context.Context) (*x509.Certificate, error)
	HBA(ctx context.Context) (pgadmin.HBAState, error)
}

// Config is how certificates are issued.
type Config struct {
	BrokerName  string        // names the CA and its Nomad Variable (PGBROKER_BROKER_NAME)
	PublicHost  string        // host name credentials give; "" means the gateway's registered addresses
	Lifetime    time.Duration // validity of a server certificate from its issue
	RenewBefore time.Duration // a certificate expiring within this is re-issued
	Poll        time.Duration // pause between two checks of what PostgreSQL serves or loaded
}

// Issuer issues and renews instances' certificates. Safe for concurrent use
// once LoadCA returned.
type Issuer struct {
	nomad    Nomad
	gateways Gateways
	cfg      Config
	ca       *pki.CA // set by LoadCA
}

// New returns an Issuer without a CA (LoadCA sets it).
func New(n Nomad, gateways Gateways, cfg Config) *Issuer {
	return &Issuer{nomad: n, gateways: gateways, cfg: cfg}
}

// CA returns the broker's CA, nil before LoadCA.
func (s *Issuer) CA() *pki.CA { return s.ca }

// Renew re-issues the server certificate of instance short when it expires
// within RenewBefore, was signed by another CA, or no longer names the host
// credentials give (the gateway moved). It returns the certificate in force
// and whether it was re-issued; WaitServing then waits until PostgreSQL
// serves it. Idempotent.
func (s *Issuer) Renew(ctx context.Context, short string) (cert string, issued bool, err error) {
	var hosts []string
	if s.cfg.PublicHost == "" {
		if hosts, err = s.gateways.GatewayAddresses(ctx, short); err != nil {
			return "", false, err
		}
	}
	return s.EnsureServer(ctx, short, s.Hosts(short, hosts...))
}

// Items of the node job's Nomad Variable (nomad/jobs/pg-<short>-nodes) that
// nodes.nomad.hcl renders besides the passwords.
const (
	ItemServerCertificate = "server_certificate" // PEM, issued by the broker's CA
	itemServerPrivateKey  = "server_private_key" // PEM (PKCS #8)
	ItemForceTLS          = "force_tls"          // "true": pg_hba.conf allows TLS connections only
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
func (s *Issuer) LoadCA(ctx context.Context, certFile, keyFile string) error {
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
		s.ca = ca
		return nil
	}
	if !brokerNameForPath.MatchString(s.cfg.BrokerName) {
		return fmt.Errorf("PGBROKER_BROKER_NAME %q must be 1 to 64 letters, digits, _ or - (it names the CA's Nomad Variable)", s.cfg.BrokerName)
	}
	path := caSecretPath(s.cfg.BrokerName)
	items, err := s.nomad.Variable(ctx, path)
	if errors.Is(err, api.ErrVariablePathNotFound) {
		certPEM, keyPEM, genErr := pki.NewCA(s.cfg.BrokerName+" instances CA", caLifetime, now)
		if genErr != nil {
			return genErr
		}
		// Created, or another replica won the race: what is there counts.
		items, err = s.nomad.EnsureVariable(ctx, path, map[string]string{"certificate": string(certPEM), "private_key": string(keyPEM)})
	}
	if err != nil {
		return fmt.Errorf("CA in Nomad Variable %s: %w", path, err)
	}
	ca, err := pki.ParseCA([]byte(items["certificate"]), []byte(items["private_key"]), now)
	if err != nil {
		return fmt.Errorf("CA in Nomad Variable %s: %w", path, err)
	}
	s.ca = ca
	return nil
}

// CACertificate returns the CA certificate (PEM), what credentials carry as
// ca_certificate. Empty before LoadCA.
func (s *Issuer) CACertificate() string {
	if s.ca == nil {
		return ""
	}
	return string(s.ca.CertPEM)
}

// Hosts are the names a server certificate must carry: the node
// service name, and the host credentials give (PGBROKER_PUBLIC_HOST, else
// gatewayHost once the gateway is placed; "" when not known yet).
func (s *Issuer) Hosts(short string, gatewayHosts ...string) []string {
	hosts := []string{naming.NodeService(short)}
	if s.cfg.PublicHost != "" {
		return append(hosts, s.cfg.PublicHost)
	}
	return append(hosts, gatewayHosts...)
}

// EnsureServer makes sure the node Variable holds a server
// certificate signed by the current CA, naming every one of hosts, and valid
// for longer than Config.RenewBefore; otherwise it issues a new one (fresh key)
// and writes it check-and-set. The node's template re-renders and SIGHUPs
// PostgreSQL, which loads it without a restart. It returns the certificate in
// force and whether it was (re)issued.
func (s *Issuer) EnsureServer(ctx context.Context, short string, hosts []string) (cert string, issued bool, err error) {
	if s.ca == nil {
		return "", false, errors.New("issue server certificate: the broker has no CA (LoadCA was not called)")
	}
	items, err := s.nomad.UpdateVariable(ctx, naming.NodesSecretPath(short), func(items api.VariableItems) bool {
		if !s.needed(items[ItemServerCertificate], hosts) {
			return false
		}
		now := time.Now()
		certPEM, keyPEM, ierr := s.ca.Issue(pki.ServerRequest{CommonName: naming.NodeService(short), Hosts: hosts, NotAfter: now.Add(s.cfg.Lifetime)}, now)
		if ierr != nil {
			err = ierr
			return false
		}
		items[ItemServerCertificate], items[itemServerPrivateKey] = string(certPEM), string(keyPEM)
		if _, ok := items[ItemForceTLS]; !ok {
			items[ItemForceTLS] = "false"
		}
		issued = true
		return true
	})
	if err != nil {
		return "", false, err
	}
	return items[ItemServerCertificate], issued, nil
}

// needed reports whether certPEM must be replaced.
func (s *Issuer) needed(certPEM string, hosts []string) bool {
	cert, err := pki.ParseCertificate([]byte(certPEM))
	if err != nil || !s.ca.Signed(cert) || time.Until(cert.NotAfter) < s.cfg.RenewBefore {
		return true
	}
	for _, h := range hosts {
		if !pki.Covers(cert, h) {
			return true
		}
	}
	return false
}

// AdminTLS is how the broker's own connections check an instance's server:
// a chain to the broker's CA and the instance's node service name.
func (s *Issuer) AdminTLS(short string) *tls.Config {
	if s.ca == nil {
		return nil
	}
	return &tls.Config{MinVersion: tls.VersionTLS12, RootCAs: s.ca.Pool(), ServerName: naming.NodeService(short)}
}

// Items of the node job's Nomad Variable for pgBackRest's TLS server, which
// each Business node runs (nodes.nomad.hcl, task "pgbackrest").
const (
	itemPgBackRestServerCertificate = "pgbackrest_server_certificate"
	itemPgBackRestServerPrivateKey  = "pgbackrest_server_private_key"
)

// EnsurePgBackRest makes sure the node Variable of instance
// short holds a certificate for the nodes' pgBackRest TLS server naming the
// node service and every node address registered now (IP addresses also as
// DNS SANs: pgBackRest 2.45 checks only those), signed by the current CA and
// not due for renewal; otherwise it issues one (fresh key). The nodes
// re-render it and restart their server task. Errors: Nomad's; no CA
// loaded.
func (s *Issuer) EnsurePgBackRest(ctx context.Context, short string) error {
	if s.ca == nil {
		return errors.New("issue the pgBackRest server certificate: the broker has no CA (LoadCA was not called)")
	}
	addresses, err := s.nodeAddresses(ctx, short)
	if err != nil {
		return err
	}
	hosts := append([]string{naming.NodeService(short)}, addresses...)
	var ierr error
	_, err = s.nomad.UpdateVariable(ctx, naming.NodesSecretPath(short), func(items api.VariableItems) bool {
		if !s.needed(items[itemPgBackRestServerCertificate], hosts) {
			return false
		}
		now := time.Now()
		certPEM, keyPEM, err := s.ca.Issue(pki.ServerRequest{CommonName: naming.NodeService(short), Hosts: hosts,
			NotAfter: now.Add(s.cfg.Lifetime), IPsAsDNS: true}, now)
		if err != nil {
			ierr = err
			return false
		}
		items[itemPgBackRestServerCertificate], items[itemPgBackRestServerPrivateKey] = string(certPEM), string(keyPEM)
		return true
	})
	if err == nil {
		err = ierr
	}
	return err
}

// nodeAddresses returns the addresses of the instance's registered nodes.
func (s *Issuer) nodeAddresses(ctx context.Context, short string) ([]string, error) {
	regs, err := s.nomad.Services(ctx, naming.NodeService(short))
	if err != nil {
		return nil, err
	}
	var hosts []string
	for _, r := range regs {
		hosts = append(hosts, r.Address)
	}
	return hosts, nil
}

// WaitServing polls until PostgreSQL presents the server certificate certPEM
// (its template was re-rendered and PostgreSQL reloaded it).
func (s *Issuer) WaitServing(ctx context.Context, admin Server, certPEM string) error {
	want, err := pki.ParseCertificate([]byte(certPEM))
	if err != nil {
		return fmt.Errorf("server certificate in Nomad: %w", err)
	}
	for {
		attempt, cancel := context.WithTimeout(ctx, 2*time.Second)
		got, err := admin.ServerCertificate(attempt)
		cancel()
		if err == nil && got.Equal(want) {
			return nil
		}
		if err == nil {
			err = fmt.Errorf("PostgreSQL still serves the certificate %s", pki.Fingerprint(got)[:16])
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("waiting for PostgreSQL to load the new server certificate: %w", err)
		case <-time.After(s.cfg.Poll):
		}
	}
}

// CertifyGateway makes the server certificate name the gateway's address
// when credentials give that address (no PGBROKER_PUBLIC_HOST), and waits
// until PostgreSQL serves it. The address is known only once the gateway is
// placed, so the first certificate names the node service alone.
func (s *Issuer) CertifyGateway(ctx context.Context, short string, admin Server, progress func(string)) error {
	if s.cfg.PublicHost != "" {
		return nil
	}
	hosts, err := s.gateways.GatewayAddresses(ctx, short)
	if err != nil {
		return err
	}
	cert, issued, err := s.EnsureServer(ctx, short, s.Hosts(short, hosts...))
	if err != nil {
		return err
	}
	if issued {
		progress("loading the server certificate for " + strings.Join(hosts, ", "))
	}
	return s.WaitServing(ctx, admin, cert)
}

// SetForceTLS writes force_tls into the node Variable and waits until
// PostgreSQL has reloaded a pg_hba.conf that says the same.
func (s *Issuer) SetForceTLS(ctx context.Context, short string, forceTLS bool, admin Server, progress func(string)) error {
	before, err := admin.HBA(ctx)
	if err != nil {
		return err
	}
	want := strconv.FormatBool(forceTLS)
	changed := false
	if _, err := s.nomad.UpdateVariable(ctx, naming.NodesSecretPath(short), func(items api.VariableItems) bool {
		if items[ItemForceTLS] == want {
			return false
		}
		items[ItemForceTLS], changed = want, true
		return true
	}); err != nil {
		return err
	}
	if changed && forceTLS {
		progress("refusing connections without TLS")
	} else if changed {
		progress("accepting connections without TLS")
	}
	for {
		hba, err := admin.HBA(ctx)
		if err == nil && hba.TLSOnly() == forceTLS && !hba.LoadedAt.Before(hba.FileModified) && (!changed || hba.LoadedAt.After(before.LoadedAt)) {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("waiting for PostgreSQL to reload pg_hba.conf with force_tls=%s: %w", want, ctx.Err())
		case <-time.After(s.cfg.Poll):
		}
	}
}
