package instances

import (
	"context"
	"errors"
	"net"
	"strconv"

	"github.com/pgbroker/pgbroker/backends"
	"github.com/pgbroker/pgbroker/webauth"

	"github.com/pgbroker/pgbroker/pgadmin"
	"github.com/pgbroker/pgbroker/store"
	"github.com/pgbroker/pgbroker/users"
)

// ErrLoginRefused means the username and password do not log in to the
// instance's database as one of its users.
var ErrLoginRefused = webauth.ErrLoginRefused

// LogIn checks that username logs in to i's database with password (a SCRAM
// login through the gateway over verified TLS) and is one of i's users
// (Users: never the broker's superuser or another instance's role), and
// returns that user. Errors: ErrLoginRefused, or what connecting met.
func (s *Service) LogIn(ctx context.Context, i store.Instance, username, password string) (users.User, error) {
	err := s.p.UserLogIn(ctx, s.target(i), username, password)
	if errors.Is(err, pgadmin.ErrLoginRefused) {
		return users.User{}, ErrLoginRefused
	}
	if err != nil {
		return users.User{}, err
	}
	u, err := s.User(ctx, i, username)
	if errors.Is(err, users.ErrUserNotFound) || (err == nil && !u.CanLogin) {
		return users.User{}, ErrLoginRefused
	}
	return u, err
}

// Backends lists the sessions of i's users (pg_stat_activity, client
// backends), oldest first.
func (s *Service) Backends(ctx context.Context, i store.Instance) ([]backends.Backend, error) {
	a, n, err := s.admin(ctx, i)
	if err != nil {
		return nil, err
	}
	return a.Backends(ctx, n)
}

// CancelBackend cancels session pid's query, or ends the session with
// terminate, when it is a session of one of i's users. Errors:
// backends.ErrNotFound.
func (s *Service) CancelBackend(ctx context.Context, i store.Instance, pid int32, terminate bool) error {
	a, n, err := s.admin(ctx, i)
	if err != nil {
		return err
	}
	return a.CancelBackend(ctx, n, pid, terminate)
}

// Gateways lists where i's gateways listen, "host:port" each, as Nomad has
// them registered now (two on Business, one otherwise).
func (s *Service) Gateways(ctx context.Context, i store.Instance) ([]string, error) {
	hosts, err := s.p.GatewayAddresses(ctx, s.target(i))
	if err != nil {
		return nil, err
	}
	out := make([]string, len(hosts))
	for k, h := range hosts {
		out[k] = net.JoinHostPort(h, strconv.Itoa(i.GatewayPort))
	}
	return out, nil
}
