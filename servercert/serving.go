package servercert

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/pgbroker/pgbroker/pki"
)

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
