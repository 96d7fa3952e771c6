// Package sealedcopy keeps a sealed copy (package sealed) of every Nomad
// Variable the broker writes in the state database, so that a Nomad that
// lost its state (a dev agent restarted, `nomad var purge` by mistake, a
// cluster rebuilt) loses no secret: Restore puts a Variable back from its
// copy. Variables wraps the broker's Nomad adapter (nomad.Cluster) with the
// same methods, so callers do not change.
//
// Order of writes. A Variable created by EnsureVariable is sealed into the
// state database first and created in Nomad from that copy: a fresh secret
// never reaches a job without its copy, and a Variable missing from Nomad
// but kept sealed comes back as it was instead of being minted anew.
// Updates, puts and deletes go to Nomad first (it serialises writers,
// check-and-set), and the copy follows: after a write, the copy is sealed
// from what Nomad holds at that moment, under a lock on the copy's row
// (store.SealedVariables.Update), so that of two writers the last to seal
// seals the latest items. Reads only add a missing copy, never replace one.
// A crash between Nomad's write and the copy's leaves the copy stale until
// the next write of that Variable or the next start (SealMissing).
package sealedcopy

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"time"

	"github.com/hashicorp/nomad/api"

	"github.com/pgbroker/pgbroker/sealed"
	"github.com/pgbroker/pgbroker/store"
)

// Nomad is the Variables of the Nomad cluster jobs read (nomad.Cluster).
type Nomad interface {
	EnsureVariable(ctx context.Context, path string, initial map[string]string) (map[string]string, error)
	UpdateVariable(ctx context.Context, path string, change func(api.VariableItems) bool) (api.VariableItems, error)
	Variable(ctx context.Context, path string) (map[string]string, error)
	PutVariable(ctx context.Context, path string, items map[string]string) error
	CreateVariable(ctx context.Context, path string, items map[string]string) (bool, error)
	DeleteVariable(ctx context.Context, path string) error
	DeleteVariablesUnder(ctx context.Context, prefix string) error
	VariablePaths(ctx context.Context, prefix string) ([]string, error)
}

// Copies keeps the envelopes by path (store.SealedVariables). Get returns
// store.ErrNotFound when there is none; Update runs change under a lock on
// path and stores what it returns (nil: nothing).
type Copies interface {
	Get(ctx context.Context, path string) (sealed.Envelope, error)
	Insert(ctx context.Context, path string, e sealed.Envelope) (bool, error)
	Update(ctx context.Context, path string, change func(current *sealed.Envelope) (*sealed.Envelope, error)) (bool, error)
	Delete(ctx context.Context, path string) error
	DeleteUnder(ctx context.Context, prefix string) error
}

// nomadReadTimeout bounds the read of a Variable made while the copy's row
// is locked (a transaction of the state database is open meanwhile).
const nomadReadTimeout = 5 * time.Second

// Variables are Nomad's Variables, each with its sealed copy. Safe for
// concurrent use.
type Variables struct {
	nomad  Nomad
	copies Copies
	key    *sealed.Key
	log    *slog.Logger
}

// New returns the Variables of n, sealed with key into copies.
func New(n Nomad, copies Copies, key *sealed.Key, log *slog.Logger) *Variables {
	return &Variables{nomad: n, copies: copies, key: key, log: log}
}

// EnsureVariable returns the items of the Variable at path. When Nomad has
// it, each item of initial it lacks is added (nomad.Cluster.EnsureVariable)
// and the copy sealed after. When Nomad has none, it is created
// (check-and-set) from the sealed copy when there is one, else from
// initial, sealed first; items of initial the copy lacks are then added as
// above. Errors: Nomad's, the state database's, a copy that does not open
// (sealed.ErrOtherKey, sealed.ErrCorrupt): never a fresh secret in place of
// one that is kept.
func (v *Variables) EnsureVariable(ctx context.Context, path string, initial map[string]string) (map[string]string, error) {
	for {
		items, err := v.nomad.Variable(ctx, path)
		if err == nil && lacksNone(items, initial) {
			return items, v.keepIfMissing(ctx, path, items)
		}
		if err == nil {
			if items, err = v.nomad.EnsureVariable(ctx, path, initial); err != nil {
				return nil, err
			}
			_, err = v.refresh(ctx, path)
			return items, err
		}
		if !errors.Is(err, api.ErrVariablePathNotFound) {
			return nil, err
		}
		e, err := v.key.Seal(path, initial)
		if err != nil {
			return nil, err
		}
		fresh, err := v.copies.Insert(ctx, path, e)
		if err != nil {
			return nil, err
		}
		want, err := v.Sealed(ctx, path) // initial, or the copy kept before
		if err != nil {
			return nil, err
		}
		created, err := v.nomad.CreateVariable(ctx, path, want)
		if err != nil {
			return nil, err
		}
		if created {
			if !fresh {
				v.log.Info("restored a Nomad Variable from its sealed copy", slog.String("path", path))
			}
			if lacksNone(want, initial) {
				return want, nil
			}
		}
		// Another writer created it meanwhile, or the copy lacks items of
		// initial: read again, adding them.
	}
}

// lacksNone reports whether items has every item named in initial.
func lacksNone(items, initial map[string]string) bool {
	for k := range initial {
		if _, ok := items[k]; !ok {
			return false
		}
	}
	return true
}

// UpdateVariable is nomad.Cluster's UpdateVariable, the copy sealed after.
func (v *Variables) UpdateVariable(ctx context.Context, path string, change func(api.VariableItems) bool) (api.VariableItems, error) {
	items, err := v.nomad.UpdateVariable(ctx, path, change)
	if err != nil {
		return nil, err
	}
	_, err = v.refresh(ctx, path)
	return items, err
}

// Variable returns the items of the Variable at path from Nomad (errors:
// api.ErrVariablePathNotFound wrapped when there is none), sealing its copy
// when there is none. Errors: sealed.ErrOtherKey when the copy was sealed
// with another key.
func (v *Variables) Variable(ctx context.Context, path string) (map[string]string, error) {
	items, err := v.nomad.Variable(ctx, path)
	if err != nil {
		return nil, err
	}
	return items, v.keepIfMissing(ctx, path, items)
}

// PutVariable writes items as the Variable at path, then seals its copy.
func (v *Variables) PutVariable(ctx context.Context, path string, items map[string]string) error {
	if err := v.nomad.PutVariable(ctx, path, items); err != nil {
		return err
	}
	_, err := v.refresh(ctx, path)
	return err
}

// DeleteVariable deletes the Variable at path, then its copy.
func (v *Variables) DeleteVariable(ctx context.Context, path string) error {
	if err := v.nomad.DeleteVariable(ctx, path); err != nil {
		return err
	}
	return v.copies.Delete(ctx, path)
}

// DeleteVariablesUnder deletes every Variable whose path starts with
// prefix, then their copies.
func (v *Variables) DeleteVariablesUnder(ctx context.Context, prefix string) error {
	if err := v.nomad.DeleteVariablesUnder(ctx, prefix); err != nil {
		return err
	}
	return v.copies.DeleteUnder(ctx, prefix)
}

// Sealed returns the items of the sealed copy of path. Errors:
// sealed.ErrNoCopy, sealed.ErrOtherKey, sealed.ErrCorrupt (wrapped, naming
// the path), the state database's.
func (v *Variables) Sealed(ctx context.Context, path string) (map[string]string, error) {
	e, err := v.copies.Get(ctx, path)
	if errors.Is(err, store.ErrNotFound) {
		return nil, fmt.Errorf("%s: %w", path, sealed.ErrNoCopy)
	}
	if err != nil {
		return nil, err
	}
	return v.key.Open(path, e)
}

// Restore creates the Variable at path from its sealed copy when Nomad has
// none (check-and-set: it never replaces a Variable), and reports whether
// it did. Errors: those of Sealed, Nomad's.
func (v *Variables) Restore(ctx context.Context, path string) (bool, error) {
	items, err := v.Sealed(ctx, path)
	if err != nil {
		return false, err
	}
	created, err := v.nomad.CreateVariable(ctx, path, items)
	if err != nil {
		return false, err
	}
	if created {
		v.log.Info("restored a Nomad Variable from its sealed copy", slog.String("path", path))
	}
	return created, nil
}

// SealMissing seals the copy of every Variable under each of prefixes
// whose copy is missing or differs from Nomad's items (Variables written
// before copies were kept, or by a broker that crashed between the two
// writes), and returns how many it wrote. Idempotent.
func (v *Variables) SealMissing(ctx context.Context, prefixes ...string) (int, error) {
	written := 0
	for _, prefix := range prefixes {
		paths, err := v.nomad.VariablePaths(ctx, prefix)
		if err != nil {
			return written, err
		}
		for _, path := range paths {
			wrote, err := v.refresh(ctx, path)
			if err != nil {
				return written, err
			}
			if wrote {
				written++
			}
		}
	}
	return written, nil
}

// keepIfMissing seals items as the copy of path when none is kept: what
// reads do. It never replaces a copy (a writer may have just sealed newer
// items), but one sealed with another key is an error: a broker started
// with the wrong key stops at its first read.
func (v *Variables) keepIfMissing(ctx context.Context, path string, items map[string]string) error {
	e, err := v.copies.Get(ctx, path)
	if err == nil {
		if e.KeyID != v.key.ID() {
			return fmt.Errorf("the sealed copy of %s: %w (key id %s; this broker's is %s)", path, sealed.ErrOtherKey, e.KeyID, v.key.ID())
		}
		return nil
	}
	if !errors.Is(err, store.ErrNotFound) {
		return err
	}
	fresh, err := v.key.Seal(path, items)
	if err != nil {
		return err
	}
	_, err = v.copies.Insert(ctx, path, fresh)
	return err
}

// refresh makes the copy of path hold what Nomad holds now, reading it
// under the copy's lock, and reports whether it wrote. A copy that does
// not authenticate is replaced; one sealed with another key is an error,
// not replaced (a broker started with the wrong key must not re-seal every
// secret under it). A Variable Nomad no longer has leaves its copy alone.
func (v *Variables) refresh(ctx context.Context, path string) (bool, error) {
	return v.copies.Update(ctx, path, func(cur *sealed.Envelope) (*sealed.Envelope, error) {
		read, cancel := context.WithTimeout(ctx, nomadReadTimeout)
		defer cancel()
		items, err := v.nomad.Variable(read, path)
		if errors.Is(err, api.ErrVariablePathNotFound) {
			return nil, nil
		}
		if err != nil {
			return nil, err
		}
		if cur != nil {
			kept, err := v.key.Open(path, *cur)
			switch {
			case err == nil && maps.Equal(kept, items):
				return nil, nil
			case errors.Is(err, sealed.ErrOtherKey):
				return nil, err
			case err != nil:
				v.log.Warn("the sealed copy of a Nomad Variable does not authenticate: sealing it again from Nomad", slog.String("path", path))
			}
		}
		e, err := v.key.Seal(path, items)
		if err != nil {
			return nil, err
		}
		return &e, nil
	})
}
