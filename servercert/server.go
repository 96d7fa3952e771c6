package servercert

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"slices"
	"time"

	"github.com/hashicorp/nomad/api"

	"github.com/pgbroker/pgbroker/naming"
	"github.com/pgbroker/pgbroker/pki"
)

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
	// One issued before nodes replicated with it as a client certificate.
	if !slices.Contains(cert.ExtKeyUsage, x509.ExtKeyUsageClientAuth) {
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
