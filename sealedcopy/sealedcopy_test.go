package sealedcopy

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"maps"
	"slices"
	"strings"
	"testing"

	"github.com/hashicorp/nomad/api"

	"github.com/pgbroker/pgbroker/sealed"
	"github.com/pgbroker/pgbroker/store"
)

// fakeNomad is Nomad's Variables in memory, check-and-set as Nomad does them.
type fakeNomad struct{ vars map[string]map[string]string }

func (f *fakeNomad) EnsureVariable(_ context.Context, path string, initial map[string]string) (map[string]string, error) {
	if _, ok := f.vars[path]; !ok {
		f.vars[path] = map[string]string{}
	}
	for k, v := range initial {
		if _, ok := f.vars[path][k]; !ok {
			f.vars[path][k] = v
		}
	}
	return maps.Clone(f.vars[path]), nil
}

func (f *fakeNomad) UpdateVariable(_ context.Context, path string, change func(api.VariableItems) bool) (api.VariableItems, error) {
	cur, ok := f.vars[path]
	if !ok {
		return nil, api.ErrVariablePathNotFound
	}
	items := api.VariableItems(maps.Clone(cur))
	if change(items) {
		f.vars[path] = maps.Clone(items)
	}
	return items, nil
}

func (f *fakeNomad) Variable(_ context.Context, path string) (map[string]string, error) {
	items, ok := f.vars[path]
	if !ok {
		return nil, api.ErrVariablePathNotFound
	}
	return maps.Clone(items), nil
}

func (f *fakeNomad) PutVariable(_ context.Context, path string, items map[string]string) error {
	f.vars[path] = maps.Clone(items)
	return nil
}

func (f *fakeNomad) CreateVariable(_ context.Context, path string, items map[string]string) (bool, error) {
	if _, ok := f.vars[path]; ok {
		return false, nil
	}
	f.vars[path] = maps.Clone(items)
	return true, nil
}

func (f *fakeNomad) DeleteVariable(_ context.Context, path string) error {
	delete(f.vars, path)
	return nil
}

func (f *fakeNomad) DeleteVariablesUnder(_ context.Context, prefix string) error {
	maps.DeleteFunc(f.vars, func(p string, _ map[string]string) bool { return strings.HasPrefix(p, prefix) })
	return nil
}

func (f *fakeNomad) VariablePaths(_ context.Context, prefix string) ([]string, error) {
	var out []string
	for p := range f.vars {
		if strings.HasPrefix(p, prefix) {
			out = append(out, p)
		}
	}
	slices.Sort(out)
	return out, nil
}

// fakeCopies is table sealed_variables in memory.
type fakeCopies struct{ rows map[string]sealed.Envelope }

func (f *fakeCopies) Get(_ context.Context, path string) (sealed.Envelope, error) {
	e, ok := f.rows[path]
	if !ok {
		return sealed.Envelope{}, store.ErrNotFound
	}
	return e, nil
}

func (f *fakeCopies) Update(_ context.Context, path string, change func(*sealed.Envelope) (*sealed.Envelope, error)) (bool, error) {
	var cur *sealed.Envelope
	if e, ok := f.rows[path]; ok {
		cur = &e
	}
	next, err := change(cur)
	if err != nil || next == nil {
		return false, err
	}
	f.rows[path] = *next
	return true, nil
}

func (f *fakeCopies) Insert(_ context.Context, path string, e sealed.Envelope) (bool, error) {
	if _, ok := f.rows[path]; ok {
		return false, nil
	}
	f.rows[path] = e
	return true, nil
}

func (f *fakeCopies) Delete(_ context.Context, path string) error {
	delete(f.rows, path)
	return nil
}

func (f *fakeCopies) DeleteUnder(_ context.Context, prefix string) error {
	maps.DeleteFunc(f.rows, func(p string, _ sealed.Envelope) bool { return strings.HasPrefix(p, prefix) })
	return nil
}

const nodes = "nomad/jobs/pg-0123456789ab-nodes"

func setup(t *testing.T, fill byte) (*Variables, *fakeNomad, *fakeCopies) {
	t.Helper()
	key, err := sealed.NewKey(bytes.Repeat([]byte{fill}, sealed.KeySize))
	if err != nil {
		t.Fatal(err)
	}
	n, c := &fakeNomad{vars: map[string]map[string]string{}}, &fakeCopies{rows: map[string]sealed.Envelope{}}
	return New(n, c, key, slog.New(slog.DiscardHandler)), n, c
}

// opened returns the items of the copy of path, failing the test when there is none.
func opened(t *testing.T, v *Variables, path string) map[string]string {
	t.Helper()
	items, err := v.Sealed(context.Background(), path)
	if err != nil {
		t.Fatalf("the copy of %s: %v", path, err)
	}
	return items
}

func TestEveryWriteLeavesACopyThatOpensToNomadsItems(t *testing.T) {
	v, n, c := setup(t, 1)
	ctx := context.Background()
	initial := map[string]string{"admin_password": "pw-admin-1", "replication_password": "pw-repl-1"}
	got, err := v.EnsureVariable(ctx, nodes, initial)
	if err != nil || !maps.Equal(got, initial) || !maps.Equal(n.vars[nodes], initial) {
		t.Fatalf("EnsureVariable = %v, %v; Nomad %v; want initial", got, err, n.vars[nodes])
	}
	if !maps.Equal(opened(t, v, nodes), initial) {
		t.Fatal("the copy after EnsureVariable differs from Nomad's items")
	}
	if _, err := v.UpdateVariable(ctx, nodes, func(i api.VariableItems) bool { i["server_key"] = "key-pem"; return true }); err != nil {
		t.Fatal(err)
	}
	if !maps.Equal(opened(t, v, nodes), n.vars[nodes]) || opened(t, v, nodes)["server_key"] != "key-pem" {
		t.Fatal("the copy after UpdateVariable differs from Nomad's items")
	}
	job := "nomad/jobs/pg-0123456789ab-dump-1"
	if err := v.PutVariable(ctx, job, map[string]string{"s3_secret": "pw-s3"}); err != nil {
		t.Fatal(err)
	}
	if opened(t, v, job)["s3_secret"] != "pw-s3" {
		t.Fatal("no copy after PutVariable")
	}
	for p, e := range c.rows {
		for _, plain := range []string{"pw-admin-1", "pw-repl-1", "key-pem", "pw-s3"} {
			if bytes.Contains(e.Ciphertext, []byte(plain)) || bytes.Contains(e.WrappedKey, []byte(plain)) {
				t.Fatalf("the copy of %s holds a secret in plain text", p)
			}
		}
	}
	if err := v.DeleteVariable(ctx, job); err != nil {
		t.Fatal(err)
	}
	binding := "pgbroker/instances/0123456789ab/bindings/b1"
	if _, err := v.EnsureVariable(ctx, binding, map[string]string{"password": "pw-b1"}); err != nil {
		t.Fatal(err)
	}
	if err := v.DeleteVariablesUnder(ctx, "pgbroker/instances/0123456789ab/"); err != nil {
		t.Fatal(err)
	}
	if paths := slices.Sorted(maps.Keys(c.rows)); !slices.Equal(paths, []string{nodes}) {
		t.Fatalf("copies after the deletes: %v; want only %s", paths, nodes)
	}
}

func TestEnsureVariableBringsBackTheKeptSecretNotAFreshOne(t *testing.T) {
	v, n, _ := setup(t, 1)
	ctx := context.Background()
	first := map[string]string{"admin_password": "pw-first"}
	if _, err := v.EnsureVariable(ctx, nodes, first); err != nil {
		t.Fatal(err)
	}
	delete(n.vars, nodes) // Nomad lost its state
	got, err := v.EnsureVariable(ctx, nodes, map[string]string{"admin_password": "pw-minted-again"})
	if err != nil || !maps.Equal(got, first) || !maps.Equal(n.vars[nodes], first) {
		t.Fatalf("EnsureVariable after the loss = %v, %v (Nomad %v); want the first items back", got, err, n.vars[nodes])
	}
}

func TestEnsureVariableAddsTheItemsItLacksAndSealsThem(t *testing.T) {
	v, n, _ := setup(t, 1)
	ctx := context.Background()
	if _, err := v.EnsureVariable(ctx, nodes, map[string]string{"admin_password": "pw-first"}); err != nil {
		t.Fatal(err)
	}
	got, err := v.EnsureVariable(ctx, nodes, map[string]string{"admin_password": "pw-other", "patroni_password": "pw-patroni"})
	want := map[string]string{"admin_password": "pw-first", "patroni_password": "pw-patroni"}
	if err != nil || !maps.Equal(got, want) || !maps.Equal(n.vars[nodes], want) || !maps.Equal(opened(t, v, nodes), want) {
		t.Fatalf("EnsureVariable with a new item = %v, %v; want %v in Nomad and in the copy", got, err, want)
	}
	delete(n.vars, nodes) // lost, then ensured by a broker that knows one more item
	got, err = v.EnsureVariable(ctx, nodes, map[string]string{"admin_password": "pw-3", "patroni_password": "pw-3", "rest_password": "pw-rest"})
	want["rest_password"] = "pw-rest"
	if err != nil || !maps.Equal(got, want) || !maps.Equal(opened(t, v, nodes), want) {
		t.Fatalf("EnsureVariable after the loss = %v, %v; want the kept items plus the new one", got, err)
	}
}

func TestEnsureVariableRefusesToMintWhenTheCopyIsSealedWithAnotherKey(t *testing.T) {
	v1, n, c := setup(t, 1)
	ctx := context.Background()
	if _, err := v1.EnsureVariable(ctx, nodes, map[string]string{"admin_password": "pw-first"}); err != nil {
		t.Fatal(err)
	}
	delete(n.vars, nodes)
	v2, _, _ := setup(t, 2)
	v2.nomad, v2.copies = n, c
	_, err := v2.EnsureVariable(ctx, nodes, map[string]string{"admin_password": "pw-fresh"})
	if !errors.Is(err, sealed.ErrOtherKey) {
		t.Fatalf("EnsureVariable with another key: %v; want sealed.ErrOtherKey", err)
	}
	if _, ok := n.vars[nodes]; ok {
		t.Fatal("a fresh secret was created in Nomad although a copy is kept under another key")
	}
	// Nomad has it again: a read with the wrong key says so, and leaves the copy alone.
	n.vars[nodes] = map[string]string{"admin_password": "pw-first"}
	before := c.rows[nodes]
	if _, err := v2.Variable(ctx, nodes); !errors.Is(err, sealed.ErrOtherKey) {
		t.Fatalf("Variable with another key: %v; want sealed.ErrOtherKey", err)
	}
	if !bytes.Equal(c.rows[nodes].Ciphertext, before.Ciphertext) {
		t.Fatal("a broker with another key re-sealed the copy")
	}
}

func TestACopyThatDoesNotAuthenticateIsSealedAgainFromNomad(t *testing.T) {
	v, n, c := setup(t, 1)
	ctx := context.Background()
	n.vars[nodes] = map[string]string{"admin_password": "pw-a"}
	if _, err := v.Variable(ctx, nodes); err != nil {
		t.Fatal(err)
	}
	e := c.rows[nodes]
	e.Ciphertext = append([]byte{}, e.Ciphertext...)
	e.Ciphertext[0] ^= 1
	c.rows[nodes] = e
	if written, err := v.SealMissing(ctx, "nomad/jobs/"); err != nil || written != 1 {
		t.Fatalf("SealMissing over a tampered copy = %d, %v; want 1 written", written, err)
	}
	if opened(t, v, nodes)["admin_password"] != "pw-a" {
		t.Fatal("a tampered copy was left in place")
	}
}

func TestRestoreRecreatesAMissingVariableAndNeverReplacesOne(t *testing.T) {
	v, n, _ := setup(t, 1)
	ctx := context.Background()
	items := map[string]string{"admin_password": "pw-a", "replication_password": "pw-r"}
	if _, err := v.EnsureVariable(ctx, nodes, items); err != nil {
		t.Fatal(err)
	}
	if ok, err := v.Restore(ctx, nodes); ok || err != nil {
		t.Fatalf("Restore over an existing Variable = %v, %v; want false, nil", ok, err)
	}
	n.vars[nodes]["admin_password"] = "pw-changed-by-hand"
	if ok, _ := v.Restore(ctx, nodes); ok || n.vars[nodes]["admin_password"] != "pw-changed-by-hand" {
		t.Fatal("Restore replaced an existing Variable")
	}
	n.vars[nodes] = maps.Clone(items)
	delete(n.vars, nodes)
	if ok, err := v.Restore(ctx, nodes); !ok || err != nil || !maps.Equal(n.vars[nodes], items) {
		t.Fatalf("Restore of a missing Variable = %v, %v (Nomad %v); want the sealed items", ok, err, n.vars[nodes])
	}
	if _, err := v.Restore(ctx, "nomad/jobs/pg-ffffffffffff-nodes"); !errors.Is(err, sealed.ErrNoCopy) {
		t.Fatalf("Restore without a copy: %v; want sealed.ErrNoCopy", err)
	}
}

func TestReadsAndSealMissingRepairAMissingOrStaleCopy(t *testing.T) {
	v, n, c := setup(t, 1)
	ctx := context.Background()
	// Written before copies existed, or by a broker that crashed between the two writes.
	n.vars[nodes] = map[string]string{"admin_password": "pw-old-deployment"}
	n.vars["pgbroker/instances/0123456789ab/bindings/b1"] = map[string]string{"password": "pw-b1"}
	n.vars["nomad/jobs/pg-ffffffffffff-nodes"] = map[string]string{"admin_password": "someone else's"}
	written, err := v.SealMissing(ctx, "nomad/jobs/pg-0123456789ab-", "pgbroker/instances/0123456789ab/")
	if err != nil || written != 2 {
		t.Fatalf("SealMissing = %d, %v; want 2 copies written", written, err)
	}
	if _, ok := c.rows["nomad/jobs/pg-ffffffffffff-nodes"]; ok {
		t.Fatal("SealMissing sealed a Variable outside its prefixes")
	}
	if written, err := v.SealMissing(ctx, "nomad/jobs/pg-0123456789ab-", "pgbroker/instances/0123456789ab/"); written != 0 || err != nil {
		t.Fatalf("SealMissing again = %d, %v; want 0 (idempotent)", written, err)
	}
	n.vars[nodes]["admin_password"] = "pw-new" // Nomad written, the copy not (a crash between the two)
	if _, err := v.Variable(ctx, nodes); err != nil {
		t.Fatal(err)
	}
	if opened(t, v, nodes)["admin_password"] != "pw-old-deployment" {
		t.Fatal("a read replaced a copy: a read racing a writer would seal the items the writer replaced")
	}
	if _, err := v.UpdateVariable(ctx, nodes, func(api.VariableItems) bool { return false }); err != nil {
		t.Fatal(err)
	}
	if opened(t, v, nodes)["admin_password"] != "pw-new" {
		t.Fatal("UpdateVariable left a stale copy")
	}
	delete(c.rows, nodes)
	if _, err := v.Variable(ctx, nodes); err != nil {
		t.Fatal(err)
	}
	if opened(t, v, nodes)["admin_password"] != "pw-new" {
		t.Fatal("a read left the copy missing")
	}
}

// TestTheCopyAfterAWriteHoldsWhatNomadHoldsThen: the copy is sealed from
// Nomad's items read after the write, not from the items this writer
// wrote, so a writer that seals last cannot bring back the items another
// writer replaced meanwhile.
func TestTheCopyAfterAWriteHoldsWhatNomadHoldsThen(t *testing.T) {
	v, n, _ := setup(t, 1)
	ctx := context.Background()
	n.vars[nodes] = map[string]string{"server_key": "k1"}
	slow := &racingNomad{fakeNomad: n, after: func() { n.vars[nodes] = map[string]string{"server_key": "k3"} }}
	v.nomad = slow
	if _, err := v.UpdateVariable(ctx, nodes, func(i api.VariableItems) bool { i["server_key"] = "k2"; return true }); err != nil {
		t.Fatal(err)
	}
	if got := opened(t, v, nodes)["server_key"]; got != "k3" {
		t.Fatalf("the copy holds %s; want k3, what Nomad held when the copy was sealed", got)
	}
}

// racingNomad runs after once, right after the first UpdateVariable: another
// writer's update landing before this one seals its copy.
type racingNomad struct {
	*fakeNomad
	after func()
}

func (r *racingNomad) UpdateVariable(ctx context.Context, path string, change func(api.VariableItems) bool) (api.VariableItems, error) {
	items, err := r.fakeNomad.UpdateVariable(ctx, path, change)
	if r.after != nil {
		r.after()
		r.after = nil
	}
	return items, err
}
