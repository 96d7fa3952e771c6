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
	"crypto/x509"
	"time"

	"github.com/hashicorp/nomad/api"

	"github.com/pgbroker/pgbroker/pgadmin"
	"github.com/pgbroker/pgbroker/pki"
)

// Nomad is what certificates need of Nomad (nomad.Cluster): Variables,
// check-and-set, and the node service's registrations.
type Nomad interface {
	Variable(ctx context.Context, path string) (map[string]string, error)
	EnsureVariable(ctx context.Context, path string, initial map[string]string) (map[string]string, error)
	UpdateVariable(ctx context.Context, path string, change func(api.VariableItems) bool) (api.VariableItems, error)
	PutVariable(ctx context.Context, path string, items map[string]string) error
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

// Items of the node job's Nomad Variable (nomad/jobs/pg-<short>-nodes) that
// nodes.nomad.hcl renders besides the passwords.
const (
	ItemServerCertificate = "server_certificate" // PEM, issued by the broker's CA
	itemServerPrivateKey  = "server_private_key" // PEM (PKCS #8)
	ItemForceTLS          = "force_tls"          // "true": pg_hba.conf allows TLS connections only
)
