package servercert

import (
	"context"
	"errors"
	"fmt"
	"os"
	"regexp"
	"time"

	"github.com/hashicorp/nomad/api"

	"github.com/pgbroker/pgbroker/pki"
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

// CA returns the broker's CA, nil before LoadCA.
func (s *Issuer) CA() *pki.CA { return s.ca }
