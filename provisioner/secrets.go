package provisioner

import (
	"context"
	"fmt"

	"github.com/pgbroker/pgbroker/users"
)

// ensureSecret returns the items of the Nomad Variable at path, creating it
// with a fresh password for each key when it does not exist: 32 letters and
// digits from crypto/rand, about 190 bits (users.NewPassword). Creation is
// check-and-set, so two workers racing end up with the same secret.
func (p *Provisioner) ensureSecret(ctx context.Context, path string, keys ...string) (map[string]string, error) {
	initial := make(map[string]string, len(keys))
	for _, k := range keys {
		initial[k] = users.NewPassword(32)
	}
	return p.nomad.EnsureVariable(ctx, path, initial)
}

// readSecret returns one item of the variable at path.
func (p *Provisioner) readSecret(ctx context.Context, path, key string) (string, error) {
	items, err := p.nomad.Variable(ctx, path)
	if err != nil {
		return "", err
	}
	val, ok := items[key]
	if !ok {
		return "", fmt.Errorf("secret %s has no item %s", path, key)
	}
	return val, nil
}
