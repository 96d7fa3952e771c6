// Package adminconn is the broker's superuser connection to an instance's
// PostgreSQL: through the instance's gateway (its address from Nomad's
// service registrations), as naming.AdminUser with the admin password from
// the node job's Nomad Variable, the server verified against the broker's
// CA. It also keeps the instance's other passwords in Nomad Variables. It
// reaches Nomad through the small interface Nomad, which *nomad.Cluster
// satisfies and unit tests fake.
package adminconn

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"slices"
	"sort"
	"time"

	"github.com/hashicorp/nomad/api"

	"github.com/pgbroker/pgbroker/backends"
	"github.com/pgbroker/pgbroker/extensions"
	"github.com/pgbroker/pgbroker/instance"
	"github.com/pgbroker/pgbroker/naming"
	"github.com/pgbroker/pgbroker/pgadmin"
	"github.com/pgbroker/pgbroker/users"
)

// Nomad is what connections need of Nomad (nomad.Cluster): the gateway
// service's registrations and the Variables holding passwords.
type Nomad interface {
	Services(ctx context.Context, name string) ([]*api.ServiceRegistration, error)
	Variable(ctx context.Context, path string) (map[string]string, error)
	EnsureVariable(ctx context.Context, path string, initial map[string]string) (map[string]string, error)
}

// serverAdmin is what orchestration asks of an instance's PostgreSQL server
// (pgadmin.Admin): is it up, which certificate and pg_hba.conf it serves,
// recovery, replication.
type serverAdmin interface {
	Ping(ctx context.Context) error
	ServerCertificate(ctx context.Context) (*x509.Certificate, error)
	HBA(ctx context.Context) (pgadmin.HBAState, error)
	InRecovery(ctx context.Context) (bool, error)
	HasDataFile(ctx context.Context, name string) (bool, error)
	DataSize(ctx context.Context) (int64, error)
	Stats(ctx context.Context, n pgadmin.Names) (pgadmin.DatabaseStats, error)
	Checkpoint(ctx context.Context) error
	Standbys(ctx context.Context) ([]pgadmin.Standby, error)
	EnsureReplicationRole(ctx context.Context, password string) error
}

// databaseAdmin makes the instance's database and the broker's roles in it
// (pgadmin.Admin).
type databaseAdmin interface {
	EnsureDatabase(ctx context.Context, n pgadmin.Names) error
	EnsureLoginRole(ctx context.Context, n pgadmin.Names, role, password string, readOnly bool) error
	DropLoginRole(ctx context.Context, n pgadmin.Names, role string) error
	AdoptCluster(ctx context.Context, from, to pgadmin.Names, adminPassword string) error
	EnsureRestoreRole(ctx context.Context, n pgadmin.Names, password string) error
	DisableRestoreRole(ctx context.Context, n pgadmin.Names) error
}

// userAdmin manages the users and extensions the management API shows
// (pgadmin.Admin).
type userAdmin interface {
	Users(ctx context.Context, n pgadmin.Names) ([]users.User, error)
	User(ctx context.Context, n pgadmin.Names, username string) (users.User, error)
	CreateUser(ctx context.Context, n pgadmin.Names, username, password string, readOnly bool) error
	SetPassword(ctx context.Context, n pgadmin.Names, username, password string) error
	Extensions(ctx context.Context, n pgadmin.Names) ([]extensions.InstalledExtension, error)
	EnableExtensions(ctx context.Context, n pgadmin.Names, names []string) error
	DisableExtensions(ctx context.Context, n pgadmin.Names, names []string) error
	Backends(ctx context.Context, n pgadmin.Names) ([]backends.Backend, error)
	CancelBackend(ctx context.Context, n pgadmin.Names, pid int32, terminate bool) error
	LogIn(ctx context.Context, database string) error
}

// AdminConn is a superuser connection factory to one instance (pgadmin.Admin;
// fakes in the unit tests).
type AdminConn interface {
	serverAdmin
	databaseAdmin
	userAdmin
}

// ConnectFunc makes the AdminConn for user at host:port, verifying the
// server with tlsConfig (nil: no TLS).
type ConnectFunc func(host string, port int, user, password string, tlsConfig *tls.Config) AdminConn

// Connect is the real ConnectFunc (pgadmin.New).
func Connect(host string, port int, user, password string, tlsConfig *tls.Config) AdminConn {
	return pgadmin.New(host, port, user, password, tlsConfig)
}

// Connector opens superuser connections to instances. Safe for concurrent use.
type Connector struct {
	nomad   Nomad
	connect ConnectFunc
	tlsFor  func(short string) *tls.Config // how the server of instance short is verified (servercert.Issuer.AdminTLS)
	poll    time.Duration                  // pause between two attempts of WaitReady
}

// New returns a Connector reaching Nomad through n, connecting with connect,
// verifying servers with tlsFor(short id) and polling every poll.
func New(n Nomad, connect ConnectFunc, tlsFor func(short string) *tls.Config, poll time.Duration) *Connector {
	return &Connector{nomad: n, connect: connect, tlsFor: tlsFor, poll: poll}
}

// GatewayAddress returns the first of GatewayAddresses.
func (c *Connector) GatewayAddress(ctx context.Context, short string) (string, error) {
	hosts, err := c.GatewayAddresses(ctx, short)
	if err != nil {
		return "", err
	}
	return hosts[0], nil
}

// GatewayAddresses returns the distinct addresses the gateway service is
// registered at, sorted. Errors when none is registered.
func (c *Connector) GatewayAddresses(ctx context.Context, short string) ([]string, error) {
	regs, err := c.nomad.Services(ctx, naming.GatewayService(short))
	if err != nil {
		return nil, fmt.Errorf("look up gateway service: %w", err)
	}
	if len(regs) == 0 {
		return nil, errors.New("the gateway is not registered in Nomad")
	}
	hosts := make([]string, 0, len(regs))
	for _, r := range regs {
		hosts = append(hosts, r.Address)
	}
	sort.Strings(hosts)
	return slices.Compact(hosts), nil
}

// At returns a superuser connection factory for the instance at host (one
// of its gateway's addresses), logging in with password.
func (c *Connector) At(host string, in instance.Instance, password string) AdminConn {
	return c.connect(host, in.GatewayPort, naming.AdminUser, password, c.tlsFor(in.ShortID))
}

// Admin returns a superuser connection factory for the instance, through its
// gateway, logging in with password.
func (c *Connector) Admin(ctx context.Context, in instance.Instance, password string) (AdminConn, error) {
	host, err := c.GatewayAddress(ctx, in.ShortID)
	if err != nil {
		return nil, err
	}
	return c.At(host, in, password), nil
}

// UserLogIn checks that username logs in to the instance's database with
// password, through its gateway, the server verified as for the superuser
// (the dashboard's login: the instance is the identity source). Errors:
// pgadmin.ErrLoginRefused, the gateway's address, the connection's.
func (c *Connector) UserLogIn(ctx context.Context, in instance.Instance, username, password string) error {
	host, err := c.GatewayAddress(ctx, in.ShortID)
	if err != nil {
		return err
	}
	return c.connect(host, in.GatewayPort, username, password, c.tlsFor(in.ShortID)).LogIn(ctx, pgadmin.NamesOf(in.ShortID).Database)
}

// InstanceAdmin is Admin with the admin password from the node job's
// Variable. Errors: reading the Variable, the gateway's address.
func (c *Connector) InstanceAdmin(ctx context.Context, in instance.Instance) (AdminConn, error) {
	password, err := c.ReadSecret(ctx, naming.NodesSecretPath(in.ShortID), "admin_password")
	if err != nil {
		return nil, err
	}
	return c.Admin(ctx, in, password)
}

// WaitReady polls SELECT 1 through the gateway until it answers. Errors
// when ctx ends, with the last connection error. (A gateway whose
// configuration fell behind the node service is restarted by the
// gateway.Watcher the broker runs beside its workers.)
func (c *Connector) WaitReady(ctx context.Context, admin AdminConn, progress instance.Progress) error {
	progress("waiting for PostgreSQL to accept connections")
	for {
		attempt, cancel := context.WithTimeout(ctx, 2*time.Second)
		err := admin.Ping(attempt)
		cancel()
		if err == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("PostgreSQL did not accept connections through the gateway: %w", err)
		case <-time.After(c.poll):
		}
	}
}

// EnsureSecret returns the items of the Nomad Variable at path, creating it
// or adding to it a fresh password for each key it lacks: 32 letters and
// digits from crypto/rand, about 190 bits (users.NewPassword). An item
// already there is kept. Writes are check-and-set, so two workers racing end
// up with the same secret.
func (c *Connector) EnsureSecret(ctx context.Context, path string, keys ...string) (map[string]string, error) {
	initial := make(map[string]string, len(keys))
	for _, k := range keys {
		initial[k] = users.NewPassword(32)
	}
	return c.nomad.EnsureVariable(ctx, path, initial)
}

// ReadSecret returns one item of the variable at path.
func (c *Connector) ReadSecret(ctx context.Context, path, key string) (string, error) {
	items, err := c.nomad.Variable(ctx, path)
	if err != nil {
		return "", err
	}
	val, ok := items[key]
	if !ok {
		return "", fmt.Errorf("secret %s has no item %s", path, key)
	}
	return val, nil
}
