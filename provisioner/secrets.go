package provisioner

import (
	"context"
	"errors"
	"fmt"

	"github.com/hashicorp/nomad/api"

	"github.com/pgbroker/pgbroker/users"
)

// randomString returns n letters and digits from crypto/rand
// (users.NewPassword; 32 characters carry about 190 bits).
func randomString(n int) string { return users.NewPassword(n) }

// ensureSecret returns the items of the Nomad Variable at path, creating it
// with a fresh password for each key when it does not exist. Creation is
// check-and-set, so two workers racing end up with the same secret.
func (p *Provisioner) ensureSecret(ctx context.Context, path string, keys ...string) (map[string]string, error) {
	vars := p.nomad.Variables()
	v, _, err := vars.Read(path, queryOpts(ctx))
	if err == nil {
		return v.Items, nil
	}
	if !errors.Is(err, api.ErrVariablePathNotFound) {
		return nil, fmt.Errorf("read secret %s from Nomad: %w", path, err)
	}
	items := api.VariableItems{}
	for _, k := range keys {
		items[k] = randomString(32)
	}
	created, _, err := vars.CheckedCreate(&api.Variable{Path: path, Items: items}, writeOpts(ctx))
	var conflict api.ErrCASConflict
	if errors.As(err, &conflict) {
		return p.ensureSecret(ctx, path, keys...)
	}
	if err != nil {
		return nil, fmt.Errorf("create secret %s in Nomad: %w", path, err)
	}
	return created.Items, nil
}

// updateSecret reads the variable at path, lets change edit its items
// (change returns false when nothing needs writing) and writes them
// check-and-set, reading and trying again when another writer came first. It
// returns the items in force.
func (p *Provisioner) updateSecret(ctx context.Context, path string, change func(api.VariableItems) bool) (api.VariableItems, error) {
	vars := p.nomad.Variables()
	for {
		v, _, err := vars.Read(path, queryOpts(ctx))
		if err != nil {
			return nil, fmt.Errorf("read secret %s from Nomad: %w", path, err)
		}
		if v.Items == nil {
			v.Items = api.VariableItems{}
		}
		if !change(v.Items) {
			return v.Items, nil
		}
		out, _, err := vars.CheckedUpdate(v, writeOpts(ctx))
		var conflict api.ErrCASConflict
		if errors.As(err, &conflict) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("update secret %s in Nomad: %w", path, err)
		}
		return out.Items, nil
	}
}

// readSecret returns one item of the variable at path.
func (p *Provisioner) readSecret(ctx context.Context, path, key string) (string, error) {
	v, _, err := p.nomad.Variables().Read(path, queryOpts(ctx))
	if err != nil {
		return "", fmt.Errorf("read secret %s from Nomad: %w", path, err)
	}
	val, ok := v.Items[key]
	if !ok {
		return "", fmt.Errorf("secret %s has no item %s", path, key)
	}
	return val, nil
}

// deleteSecret deletes the variable at path; a missing one is not an error.
func (p *Provisioner) deleteSecret(ctx context.Context, path string) error {
	if _, err := p.nomad.Variables().Delete(path, writeOpts(ctx)); err != nil && !errors.Is(err, api.ErrVariablePathNotFound) {
		return fmt.Errorf("delete secret %s from Nomad: %w", path, err)
	}
	return nil
}

// deleteSecretsUnder deletes every variable under prefix.
func (p *Provisioner) deleteSecretsUnder(ctx context.Context, prefix string) error {
	metas, _, err := p.nomad.Variables().PrefixList(prefix, queryOpts(ctx))
	if err != nil {
		return fmt.Errorf("list secrets under %s in Nomad: %w", prefix, err)
	}
	for _, m := range metas {
		if err := p.deleteSecret(ctx, m.Path); err != nil {
			return err
		}
	}
	return nil
}

func queryOpts(ctx context.Context) *api.QueryOptions { return (&api.QueryOptions{}).WithContext(ctx) }

func writeOpts(ctx context.Context) *api.WriteOptions { return (&api.WriteOptions{}).WithContext(ctx) }
