package servercert

import (
	"context"
	"errors"
	"maps"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/nomad/api"

	"github.com/pgbroker/pgbroker/naming"
	"github.com/pgbroker/pgbroker/pki"
)

// variables is Nomad's Variables in memory, check-and-set as Nomad does
// them, and the gateway's addresses.
type variables struct {
	items    map[string]map[string]string
	gateways []string
}

func newVariables() *variables { return &variables{items: map[string]map[string]string{}} }

func (v *variables) Variable(_ context.Context, path string) (map[string]string, error) {
	items, ok := v.items[path]
	if !ok {
		return nil, api.ErrVariablePathNotFound
	}
	return maps.Clone(items), nil
}

func (v *variables) EnsureVariable(_ context.Context, path string, initial map[string]string) (map[string]string, error) {
	if _, ok := v.items[path]; !ok {
		v.items[path] = maps.Clone(initial)
	}
	return maps.Clone(v.items[path]), nil
}

func (v *variables) UpdateVariable(_ context.Context, path string, change func(api.VariableItems) bool) (api.VariableItems, error) {
	items := api.VariableItems(maps.Clone(v.items[path]))
	if items == nil {
		items = api.VariableItems{}
	}
	if change(items) {
		v.items[path] = maps.Clone(items)
	}
	return items, nil
}

func (v *variables) PutVariable(_ context.Context, path string, items map[string]string) error {
	v.items[path] = maps.Clone(items)
	return nil
}

func (v *variables) Services(context.Context, string) ([]*api.ServiceRegistration, error) {
	return nil, nil
}

func (v *variables) GatewayAddresses(context.Context, string) ([]string, error) {
	if len(v.gateways) == 0 {
		return nil, errors.New("the gateway is not registered in Nomad")
	}
	return v.gateways, nil
}

const short = "0123456789ab"

func issuer(t *testing.T, v *variables) *Issuer {
	t.Helper()
	s := New(v, v, Config{BrokerName: "test", Lifetime: 90 * 24 * time.Hour, RenewBefore: 30 * 24 * time.Hour, Poll: time.Millisecond})
	if _, err := s.LoadCA(context.Background(), CASource{}); err != nil {
		t.Fatal(err)
	}
	return s
}

func TestReplicasSharingABrokerNameAgreeOnOneCA(t *testing.T) {
	v := newVariables()
	a, b := issuer(t, v), issuer(t, v)
	if a.CACertificate() == "" || a.CACertificate() != b.CACertificate() {
		t.Fatalf("two issuers on one Variable have different CAs")
	}
	if _, ok := v.items["pgbroker/test/ca"]["private_key"]; !ok {
		t.Fatalf("the CA is not kept in the Nomad Variable pgbroker/test/ca: %v", v.items)
	}
}

func TestABrokerNameThatCannotNameAVariableIsRefused(t *testing.T) {
	s := New(newVariables(), nil, Config{BrokerName: "a/b"})
	_, err := s.LoadCA(context.Background(), CASource{})
	if err == nil || !strings.Contains(err.Error(), "PGBROKER_BROKER_NAME") {
		t.Fatalf("LoadCA with broker name a/b: %v, want an error naming PGBROKER_BROKER_NAME", err)
	}
}

func TestServerCertificateIsIssuedOnceAndAgainForANewHost(t *testing.T) {
	v := newVariables()
	s := issuer(t, v)
	ctx := context.Background()
	first, issued, err := s.EnsureServer(ctx, short, s.Hosts(short))
	if err != nil || !issued {
		t.Fatalf("first EnsureServer: issued %v, %v", issued, err)
	}
	if got := v.items[naming.NodesSecretPath(short)][ItemForceTLS]; got != "false" {
		t.Errorf("force_tls = %q after the first certificate, want false", got)
	}
	same, issued, err := s.EnsureServer(ctx, short, s.Hosts(short))
	if err != nil || issued || same != first {
		t.Fatalf("second EnsureServer for the same hosts: issued %v, same certificate %v, %v", issued, same == first, err)
	}
	v.gateways = []string{"10.0.0.7"}
	renewed, issued, err := s.Renew(ctx, short)
	if err != nil || !issued {
		t.Fatalf("Renew once the gateway is placed: issued %v, %v", issued, err)
	}
	cert, err := pki.ParseCertificate([]byte(renewed))
	if err != nil || !pki.Covers(cert, "10.0.0.7") || !pki.Covers(cert, naming.NodeService(short)) {
		t.Fatalf("renewed certificate does not name the gateway and the node service (%v)", err)
	}
}

func TestAdminConnectionsVerifyTheNodeServiceAgainstTheCA(t *testing.T) {
	if New(newVariables(), nil, Config{}).AdminTLS(short) != nil {
		t.Fatal("a TLS configuration before LoadCA")
	}
	c := issuer(t, newVariables()).AdminTLS(short)
	if c == nil || c.RootCAs == nil || c.ServerName != naming.NodeService(short) || c.InsecureSkipVerify {
		t.Fatalf("AdminTLS = %+v", c)
	}
}
