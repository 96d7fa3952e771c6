package nomad

import (
	"context"
	"errors"
	"fmt"

	"github.com/hashicorp/nomad/api"
)

// Nomad Variables hold every secret of an instance (passwords, keys,
// pgBackRest settings); a job reads those at nomad/jobs/<job id> in its
// templates. Errors name the path, never an item's value.

// EnsureVariable returns the items of the Variable at path, creating it
// with initial when it does not exist, and adding each item of initial it
// lacks (an item a newer broker introduced, such as the Patroni REST API
// password of an instance made before it); items already there are never
// changed. Both writes are check-and-set, so two brokers racing end up with
// the same items.
func (n *Cluster) EnsureVariable(ctx context.Context, path string, initial map[string]string) (map[string]string, error) {
	for {
		_, _, err := n.c.Variables().Read(path, queryOpts(ctx))
		if err == nil {
			return n.UpdateVariable(ctx, path, func(items api.VariableItems) bool { return addMissing(items, initial) })
		}
		if !errors.Is(err, api.ErrVariablePathNotFound) {
			return nil, fmt.Errorf("read secret %s from Nomad: %w", path, err)
		}
		created, _, err := n.c.Variables().CheckedCreate(&api.Variable{Path: path, Items: initial}, writeOpts(ctx))
		var conflict api.ErrCASConflict
		if errors.As(err, &conflict) {
			continue // another writer came first: read theirs
		}
		if err != nil {
			return nil, fmt.Errorf("create secret %s in Nomad: %w", path, err)
		}
		return created.Items, nil
	}
}

// addMissing adds to items each item of initial it lacks and reports
// whether it added any.
func addMissing(items api.VariableItems, initial map[string]string) bool {
	added := false
	for k, v := range initial {
		if _, ok := items[k]; !ok {
			items[k] = v
			added = true
		}
	}
	return added
}

// UpdateVariable reads the Variable at path, lets change edit its items
// (change returns false when nothing needs writing) and writes them
// check-and-set, reading and trying again when another writer came first.
// It returns the items in force. Errors: a missing Variable, Nomad's.
func (n *Cluster) UpdateVariable(ctx context.Context, path string, change func(api.VariableItems) bool) (api.VariableItems, error) {
	for {
		v, _, err := n.c.Variables().Read(path, queryOpts(ctx))
		if err != nil {
			return nil, fmt.Errorf("read secret %s from Nomad: %w", path, err)
		}
		if v.Items == nil {
			v.Items = api.VariableItems{}
		}
		if !change(v.Items) {
			return v.Items, nil
		}
		out, _, err := n.c.Variables().CheckedUpdate(v, writeOpts(ctx))
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

// Variable returns the items of the Variable at path. Errors:
// api.ErrVariablePathNotFound (wrapped) when there is none.
func (n *Cluster) Variable(ctx context.Context, path string) (map[string]string, error) {
	v, _, err := n.c.Variables().Read(path, queryOpts(ctx))
	if err != nil {
		return nil, fmt.Errorf("read secret %s from Nomad: %w", path, err)
	}
	return v.Items, nil
}

// PutVariable writes items as the Variable at path, replacing what is there.
func (n *Cluster) PutVariable(ctx context.Context, path string, items map[string]string) error {
	if _, _, err := n.c.Variables().Create(&api.Variable{Path: path, Items: items}, writeOpts(ctx)); err != nil {
		return fmt.Errorf("create secret %s in Nomad: %w", path, err)
	}
	return nil
}

// DeleteVariable deletes the Variable at path; a missing one is not an error.
func (n *Cluster) DeleteVariable(ctx context.Context, path string) error {
	if _, err := n.c.Variables().Delete(path, writeOpts(ctx)); err != nil && !errors.Is(err, api.ErrVariablePathNotFound) {
		return fmt.Errorf("delete secret %s from Nomad: %w", path, err)
	}
	return nil
}

// DeleteVariablesUnder deletes every Variable whose path starts with prefix.
func (n *Cluster) DeleteVariablesUnder(ctx context.Context, prefix string) error {
	metas, _, err := n.c.Variables().PrefixList(prefix, queryOpts(ctx))
	if err != nil {
		return fmt.Errorf("list secrets under %s in Nomad: %w", prefix, err)
	}
	for _, m := range metas {
		if err := n.DeleteVariable(ctx, m.Path); err != nil {
			return err
		}
	}
	return nil
}

// CreateVariable creates the Variable at path with items, check-and-set: it
// never replaces one that exists, and then reports false.
func (n *Cluster) CreateVariable(ctx context.Context, path string, items map[string]string) (bool, error) {
	_, _, err := n.c.Variables().CheckedCreate(&api.Variable{Path: path, Items: items}, writeOpts(ctx))
	var conflict api.ErrCASConflict
	if errors.As(err, &conflict) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("create secret %s in Nomad: %w", path, err)
	}
	return true, nil
}

// VariablePaths returns the path of every Variable whose path starts with
// prefix.
func (n *Cluster) VariablePaths(ctx context.Context, prefix string) ([]string, error) {
	metas, _, err := n.c.Variables().PrefixList(prefix, queryOpts(ctx))
	if err != nil {
		return nil, fmt.Errorf("list secrets under %s in Nomad: %w", prefix, err)
	}
	paths := make([]string, 0, len(metas))
	for _, m := range metas {
		paths = append(paths, m.Path)
	}
	return paths, nil
}
