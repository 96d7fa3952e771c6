package reconcile

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"slices"
	"testing"
	"time"

	"github.com/pgbroker/pgbroker/naming"
)

// certNaming returns a PEM certificate whose IP SANs are ips, as servercert
// issues them for an instance's gateways.
func certNaming(t *testing.T, ips ...string) string {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "pg-x-node"},
		DNSNames: []string{"pg-x-node"}, NotBefore: time.Now(), NotAfter: time.Now().Add(time.Hour)}
	for _, ip := range ips {
		tmpl.IPAddresses = append(tmpl.IPAddresses, net.ParseIP(ip))
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	return string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}))
}

// TestRepairPinsTheGatewayToTheClientItsCertificateNames: the lost Starter's
// gateway is registered again on the one client whose address its server
// certificate names (the host of the credentials handed out); with no
// client named, or two, it is not pinned.
func TestRepairPinsTheGatewayToTheClientItsCertificateNames(t *testing.T) {
	for _, c := range []struct {
		name string
		ips  []string
		want string
	}{
		{"one client named", []string{"10.0.0.2"}, " gateway=client-b"},
		{"no client named", []string{"192.0.2.7"}, ""},
		{"two clients named", []string{"10.0.0.1", "10.0.0.3"}, ""},
		{"no certificate", nil, ""},
	} {
		t.Run(c.name, func(t *testing.T) {
			w := newWorld()
			inst := w.healthy("inst-1", starter)
			if c.ips != nil {
				w.gatewayCert = certNaming(t, c.ips...)
			}
			w.lose(inst)
			if err := w.reconciler(t).Pass(context.Background()); err != nil {
				t.Fatal(err)
			}
			want := []string{
				"restore " + naming.NodesSecretPath(inst.ShortID),
				"restore pgbroker/instances/" + inst.ShortID + "/bindings/b1",
				"provision " + inst.ShortID + " node=client-a port=31007" + c.want,
			}
			if !slices.Equal(w.calls, want) {
				t.Errorf("calls = %q; want %q", w.calls, want)
			}
		})
	}
}
