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
	"github.com/pgbroker/pgbroker/sealed"
)

// caLifetime is how long a CA the broker makes itself stays valid.
const caLifetime = 10 * 365 * 24 * time.Hour

var brokerNameForPath = regexp.MustCompile(`^[A-Za-z0-9_-]{1,64}$`)

// CAVariablePath is the Nomad Variable holding the CA the broker made:
// items certificate and private_key (PEM).
func CAVariablePath(brokerName string) string { return "pgbroker/" + brokerName + "/ca" }

// ErrCALost: the CA's Variable and its sealed copy are both gone while
// instances exist, whose credentials carry that CA.
var ErrCALost = errors.New("the CA is lost: its Nomad Variable and its sealed copy in the state database are both missing, " +
	"and instances exist whose credentials carry it. Restore the state database (or Nomad) from a backup, " +
	"or run `pgbroker ca reissue` to make a new CA: every server certificate is then re-issued, and apps must bind again to get the new ca_certificate")

// CACopies puts the CA's Variable back from its sealed copy
// (sealedcopy.Variables.Restore). Errors: sealed.ErrNoCopy when none is kept.
type CACopies interface {
	Restore(ctx context.Context, path string) (bool, error)
}

// CASource is where LoadCA finds the CA.
type CASource struct {
	// CertFile and KeyFile (PGBROKER_CA_CERT_FILE, PGBROKER_CA_KEY_FILE): when
	// CertFile is set, the CA comes from these PEM files, nothing else.
	CertFile, KeyFile string
	// Copies restores the CA's Variable when Nomad lost it; nil: none kept.
	Copies CACopies
	// MayMint reports whether a new CA may be made when the Variable and its
	// copy are both missing: only while no instance exists. nil: always.
	MayMint func(ctx context.Context) (bool, error)
}

// CAOrigin says where LoadCA found the CA.
type CAOrigin string

// Where a CA comes from.
const (
	CAFromFiles CAOrigin = "files"
	CAFromNomad CAOrigin = "nomad"
	CARestored  CAOrigin = "restored from its sealed copy"
	CAMinted    CAOrigin = "minted"
)

// LoadCA sets the CA that signs instances' server certificates: read from
// PEM files when src.CertFile is set, else the Nomad Variable
// pgbroker/<broker name>/ca. When Nomad lost it, the Variable is restored
// from its sealed copy; when both are missing, a new CA is made only if
// src.MayMint allows it (first start), created check-and-set so that
// replicas sharing the broker name agree on one CA; otherwise ErrCALost.
// The private key never leaves Nomad, the file or its sealed copy. Errors
// name the file or the Variable.
func (s *Issuer) LoadCA(ctx context.Context, src CASource) (CAOrigin, error) {
	now := time.Now()
	if src.CertFile != "" {
		return CAFromFiles, s.loadCAFiles(src.CertFile, src.KeyFile, now)
	}
	if !brokerNameForPath.MatchString(s.cfg.BrokerName) {
		return "", fmt.Errorf("PGBROKER_BROKER_NAME %q must be 1 to 64 letters, digits, _ or - (it names the CA's Nomad Variable)", s.cfg.BrokerName)
	}
	path := CAVariablePath(s.cfg.BrokerName)
	origin := CAFromNomad
	items, err := s.nomad.Variable(ctx, path)
	if errors.Is(err, api.ErrVariablePathNotFound) {
		origin, err = s.recoverCA(ctx, src, path, now)
		if err == nil {
			items, err = s.nomad.Variable(ctx, path)
		}
	}
	if err != nil {
		return "", fmt.Errorf("CA in Nomad Variable %s: %w", path, err)
	}
	ca, err := pki.ParseCA([]byte(items["certificate"]), []byte(items["private_key"]), now)
	if err != nil {
		return "", fmt.Errorf("CA in Nomad Variable %s: %w", path, err)
	}
	s.ca = ca
	return origin, nil
}

// recoverCA makes the CA's missing Variable exist again: from its sealed
// copy, else a new CA when src.MayMint allows it.
func (s *Issuer) recoverCA(ctx context.Context, src CASource, path string, now time.Time) (CAOrigin, error) {
	if src.Copies != nil {
		_, err := src.Copies.Restore(ctx, path) // false: another replica put it back first
		if err == nil {
			return CARestored, nil
		}
		if !errors.Is(err, sealed.ErrNoCopy) {
			return "", err
		}
	}
	if src.MayMint != nil {
		may, err := src.MayMint(ctx)
		if err != nil {
			return "", err
		}
		if !may {
			return "", ErrCALost
		}
	}
	certPEM, keyPEM, err := pki.NewCA(s.cfg.BrokerName+" instances CA", caLifetime, now)
	if err != nil {
		return "", err
	}
	// Created, or another replica won the race: what is there counts.
	_, err = s.nomad.EnsureVariable(ctx, path, map[string]string{"certificate": string(certPEM), "private_key": string(keyPEM)})
	return CAMinted, err
}

func (s *Issuer) loadCAFiles(certFile, keyFile string, now time.Time) error {
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

// ReissueCA replaces the CA in the Variable pgbroker/<broker name>/ca (and,
// through the Nomad adapter, its sealed copy) with a new one, and sets it.
// Every server certificate signed by the old CA is then re-issued by the
// next renewal sweep (EnsureServer re-issues a certificate the current CA
// did not sign). It returns the new CA certificate (PEM).
func (s *Issuer) ReissueCA(ctx context.Context) (string, error) {
	if !brokerNameForPath.MatchString(s.cfg.BrokerName) {
		return "", fmt.Errorf("PGBROKER_BROKER_NAME %q must be 1 to 64 letters, digits, _ or - (it names the CA's Nomad Variable)", s.cfg.BrokerName)
	}
	now := time.Now()
	certPEM, keyPEM, err := pki.NewCA(s.cfg.BrokerName+" instances CA", caLifetime, now)
	if err != nil {
		return "", err
	}
	path := CAVariablePath(s.cfg.BrokerName)
	if err := s.nomad.PutVariable(ctx, path, map[string]string{"certificate": string(certPEM), "private_key": string(keyPEM)}); err != nil {
		return "", fmt.Errorf("CA in Nomad Variable %s: %w", path, err)
	}
	ca, err := pki.ParseCA(certPEM, keyPEM, now)
	if err != nil {
		return "", err
	}
	s.ca = ca
	return string(certPEM), nil
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
