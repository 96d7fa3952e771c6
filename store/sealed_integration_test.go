package store_test

import (
	"bytes"
	"context"
	"errors"
	"slices"
	"testing"

	"github.com/pgbroker/pgbroker/sealed"
	"github.com/pgbroker/pgbroker/store"
	"github.com/pgbroker/pgbroker/store/storetest"
)

// TestSealedVariablesKeepOneEnvelopePerPathAndDeleteByPrefix: Put replaces,
// Insert keeps what is there, Get gives the bytes back, DeleteUnder takes
// only the paths under its prefix (a LIKE wildcard in it is literal).
func TestSealedVariablesKeepOneEnvelopePerPathAndDeleteByPrefix(t *testing.T) {
	s := storetest.New(t).SealedVariables()
	ctx := context.Background()
	env := func(b byte) sealed.Envelope {
		return sealed.Envelope{KeyID: "k1", WrappedKey: []byte{b, 1}, Nonce: []byte{b, 2}, Ciphertext: []byte{b, 3}}
	}
	if _, err := s.Get(ctx, "nomad/jobs/pg-a-nodes"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("Get of nothing: %v; want ErrNotFound", err)
	}
	for _, p := range []string{"nomad/jobs/pg-a-nodes", "nomad/jobs/pg-a_x-nodes", "nomad/jobs/pg-ab-nodes", "pgbroker/instances/a/bindings/b1"} {
		if err := s.Put(ctx, p, env(1)); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Put(ctx, "nomad/jobs/pg-a-nodes", env(2)); err != nil {
		t.Fatal(err)
	}
	if ok, err := s.Insert(ctx, "nomad/jobs/pg-a-nodes", env(3)); ok || err != nil {
		t.Fatalf("Insert over a copy = %v, %v; want false", ok, err)
	}
	got, err := s.Get(ctx, "nomad/jobs/pg-a-nodes")
	if err != nil || got.KeyID != "k1" || !bytes.Equal(got.Ciphertext, []byte{2, 3}) || !bytes.Equal(got.WrappedKey, []byte{2, 1}) || !bytes.Equal(got.Nonce, []byte{2, 2}) {
		t.Fatalf("Get = %+v, %v; want the envelope of the last Put", got, err)
	}
	if ok, err := s.Insert(ctx, "nomad/jobs/pg-c-nodes", env(4)); !ok || err != nil {
		t.Fatalf("Insert of a new path = %v, %v; want true", ok, err)
	}
	if err := s.DeleteUnder(ctx, "nomad/jobs/pg-a_"); err != nil {
		t.Fatal(err)
	}
	if err := s.Delete(ctx, "pgbroker/instances/a/bindings/b1"); err != nil {
		t.Fatal(err)
	}
	paths, err := s.Paths(ctx, "")
	if want := []string{"nomad/jobs/pg-a-nodes", "nomad/jobs/pg-ab-nodes", "nomad/jobs/pg-c-nodes"}; err != nil || !slices.Equal(paths, want) {
		t.Fatalf("Paths after deletes = %v, %v; want %v", paths, err, want)
	}
}
