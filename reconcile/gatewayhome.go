package reconcile

import (
	"context"
	"crypto/x509"
	"encoding/pem"

	"github.com/pgbroker/pgbroker/naming"
	"github.com/pgbroker/pgbroker/servercert"
)

// formerGatewayNode returns the Nomad client that ran the gateway of
// instance short before Nomad lost it: the one client whose advertised
// address the instance's server certificate names (servercert names the
// gateways' addresses, the hosts of the credentials handed out; the
// certificate is back from its sealed copy before this runs). "" when no
// client or more than one matches, or there is no certificate: the gateway
// is then placed by the scheduler and may come back at another address.
// Errors: Nomad did not answer.
func (r *Reconciler) formerGatewayNode(ctx context.Context, short string) (string, error) {
	items, err := r.d.Nomad.Variable(ctx, naming.NodesSecretPath(short))
	if err != nil {
		return "", err
	}
	block, _ := pem.Decode([]byte(items[servercert.ItemServerCertificate]))
	if block == nil {
		return "", nil
	}
	cert, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		return "", nil
	}
	named := map[string]bool{}
	for _, ip := range cert.IPAddresses {
		named[ip.String()] = true
	}
	addrs, err := r.d.Nomad.NodeAddresses(ctx)
	if err != nil {
		return "", err
	}
	var found []string
	for id, addr := range addrs {
		if named[addr] {
			found = append(found, id)
		}
	}
	if len(found) != 1 {
		return "", nil
	}
	return found[0], nil
}
