package adminconn

import (
	"context"
	"crypto/tls"
	"errors"
	"maps"
	"slices"
	"testing"

	"github.com/hashicorp/nomad/api"

	"github.com/pgbroker/pgbroker/instance"
	"github.com/pgbroker/pgbroker/naming"
)

// fakeNomad holds the gateway service's registrations and the Variables.
type fakeNomad struct {
	gateways []string // registered addresses, in registration order
	vars     variables
}

// variables are Nomad Variables by path.
type variables map[string]map[string]string

func (f *fakeNomad) Services(_ context.Context, name string) ([]*api.ServiceRegistration, error) {
	if name != naming.GatewayService(short) {
		return nil, nil
	}
	var out []*api.ServiceRegistration
	for _, a := range f.gateways {
		out = append(out, &api.ServiceRegistration{ServiceName: name, Address: a})
	}
	return out, nil
}

func (f *fakeNomad) Variable(_ context.Context, path string) (map[string]string, error) {
	if items, ok := f.vars[path]; ok {
		return maps.Clone(items), nil
	}
	return nil, api.ErrVariablePathNotFound
}

// EnsureVariable creates the Variable with initial unless it exists, and
// adds the items of initial it lacks (nomad.Cluster.EnsureVariable).
func (f *fakeNomad) EnsureVariable(ctx context.Context, path string, initial map[string]string) (map[string]string, error) {
	if _, ok := f.vars[path]; !ok {
		f.vars[path] = maps.Clone(initial)
	}
	for k, v := range initial {
		if _, ok := f.vars[path][k]; !ok {
			f.vars[path][k] = v
		}
	}
	return f.Variable(ctx, path)
}

const short = "0123456789ab"

// dialed is what a ConnectFunc was asked for.
type dialed struct {
	host           string
	port           int
	user, password string
	serverName     string
}

type recorder struct {
	AdminConn // not asked
	dialed
}

func connector(f *fakeNomad) *Connector {
	connect := func(host string, port int, user, password string, c *tls.Config) AdminConn {
		return recorder{dialed: dialed{host, port, user, password, c.ServerName}}
	}
	tlsFor := func(s string) *tls.Config { return &tls.Config{ServerName: naming.NodeService(s)} }
	return New(f, connect, tlsFor, 0)
}

func TestGatewayAddressesAreDistinctAndSorted(t *testing.T) {
	c := connector(&fakeNomad{gateways: []string{"10.0.0.2", "10.0.0.1", "10.0.0.2"}})
	got, err := c.GatewayAddresses(context.Background(), short)
	if err != nil || !slices.Equal(got, []string{"10.0.0.1", "10.0.0.2"}) {
		t.Fatalf("GatewayAddresses = %v, %v", got, err)
	}
	if _, err := connector(&fakeNomad{}).GatewayAddress(context.Background(), short); err == nil {
		t.Fatal("no gateway registered: got an address")
	}
}

// TestInstanceAdminLogsInAsTheAdminThroughTheGatewayVerifyingTheNodeService:
// the admin password from the node job's Variable, the first gateway
// address, the gateway port, the node service as the name TLS checks.
func TestInstanceAdminLogsInAsTheAdminThroughTheGatewayVerifyingTheNodeService(t *testing.T) {
	f := &fakeNomad{gateways: []string{"10.0.0.2", "10.0.0.1"},
		vars: variables{naming.NodesSecretPath(short): {"admin_password": "pw"}}}
	a, err := connector(f).InstanceAdmin(context.Background(), instance.Instance{ShortID: short, GatewayPort: 31000})
	if err != nil {
		t.Fatal(err)
	}
	want := dialed{"10.0.0.1", 31000, naming.AdminUser, "pw", naming.NodeService(short)}
	if got := a.(recorder).dialed; got != want {
		t.Fatalf("dialed %+v, want %+v", got, want)
	}
}

func TestSecretsAreMadeOnceAndAMissingItemIsAnError(t *testing.T) {
	f := &fakeNomad{vars: variables{}}
	c := connector(f)
	ctx := context.Background()
	first, err := c.EnsureSecret(ctx, "p", "a", "b")
	if err != nil || len(first["a"]) != 32 || first["a"] == first["b"] {
		t.Fatalf("EnsureSecret = %v, %v: want two distinct 32-character passwords", first, err)
	}
	again, err := c.EnsureSecret(ctx, "p", "a", "b")
	if err != nil || !maps.Equal(first, again) {
		t.Fatalf("EnsureSecret again changed the secret: %v, %v", again, err)
	}
	if got, err := c.ReadSecret(ctx, "p", "a"); err != nil || got != first["a"] {
		t.Fatalf("ReadSecret = %q, %v", got, err)
	}
	if _, err := c.ReadSecret(ctx, "p", "c"); err == nil {
		t.Fatal("ReadSecret of a missing item: no error")
	}
	if _, err := c.ReadSecret(ctx, "q", "a"); !errors.Is(err, api.ErrVariablePathNotFound) {
		t.Fatalf("ReadSecret of a missing Variable: %v", err)
	}
}
