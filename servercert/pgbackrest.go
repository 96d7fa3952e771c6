package servercert

import (
	"context"
	"errors"
	"time"

	"github.com/hashicorp/nomad/api"

	"github.com/pgbroker/pgbroker/naming"
	"github.com/pgbroker/pgbroker/pki"
)

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
