package store_test

import (
	"bytes"
	"context"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/pgbroker/pgbroker/sealed"
	"github.com/pgbroker/pgbroker/store"
	"github.com/pgbroker/pgbroker/store/storetest"
)

// TestSealedVariablesKeepOneEnvelopePerPathAndDeleteByPrefix: Update
// replaces what change returns, Insert keeps what is there, Get gives the
// bytes back, DeleteUnder takes only the paths under its prefix (a LIKE
// wildcard in it is literal).
func TestSealedVariablesKeepOneEnvelopePerPathAndDeleteByPrefix(t *testing.T) {
	s := storetest.New(t).SealedVariables()
	ctx := context.Background()
	env := func(b byte) sealed.Envelope {
		return sealed.Envelope{KeyID: "k1", WrappedKey: []byte{b, 1}, Nonce: []byte{b, 2}, Ciphertext: []byte{b, 3}}
	}
	if _, err := s.Get(ctx, "nomad/jobs/pg-a-nodes"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("Get of nothing: %v; want ErrNotFound", err)
	}
	put := func(p string, e sealed.Envelope) {
		t.Helper()
		if stored, err := s.Update(ctx, p, func(*sealed.Envelope) (*sealed.Envelope, error) { return &e, nil }); !stored || err != nil {
			t.Fatalf("Update %s = %v, %v", p, stored, err)
		}
	}
	for _, p := range []string{"nomad/jobs/pg-a-nodes", "nomad/jobs/pg-a_x-nodes", "nomad/jobs/pg-ab-nodes", "pgbroker/instances/a/bindings/b1"} {
		put(p, env(1))
	}
	put("nomad/jobs/pg-a-nodes", env(2))
	var seen *sealed.Envelope
	if stored, err := s.Update(ctx, "nomad/jobs/pg-a-nodes", func(cur *sealed.Envelope) (*sealed.Envelope, error) { seen = cur; return nil, nil }); stored || err != nil {
		t.Fatalf("Update returning nil = %v, %v; want nothing stored", stored, err)
	}
	if seen == nil || !bytes.Equal(seen.Ciphertext, []byte{2, 3}) {
		t.Fatalf("Update's change saw %+v; want the envelope stored last", seen)
	}
	if ok, err := s.Insert(ctx, "nomad/jobs/pg-a-nodes", env(3)); ok || err != nil {
		t.Fatalf("Insert over a copy = %v, %v; want false", ok, err)
	}
	got, err := s.Get(ctx, "nomad/jobs/pg-a-nodes")
	if err != nil || got.KeyID != "k1" || !bytes.Equal(got.Ciphertext, []byte{2, 3}) || !bytes.Equal(got.WrappedKey, []byte{2, 1}) || !bytes.Equal(got.Nonce, []byte{2, 2}) {
		t.Fatalf("Get = %+v, %v; want the envelope of the last Update", got, err)
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

// TestSealedVariablesUpdatesOfOnePathRunOneAfterTheOther: while one Update
// of a path runs its change, another Update of the same path waits; one of
// another path does not.
func TestSealedVariablesUpdatesOfOnePathRunOneAfterTheOther(t *testing.T) {
	s := storetest.New(t).SealedVariables()
	ctx := context.Background()
	inside, release := make(chan struct{}), make(chan struct{})
	first := make(chan error, 1)
	go func() {
		_, err := s.Update(ctx, "p", func(*sealed.Envelope) (*sealed.Envelope, error) {
			close(inside)
			<-release
			return &sealed.Envelope{KeyID: "first", WrappedKey: []byte{1}, Nonce: []byte{1}, Ciphertext: []byte{1}}, nil
		})
		first <- err
	}()
	<-inside
	if _, err := s.Update(ctx, "other", func(*sealed.Envelope) (*sealed.Envelope, error) { return nil, nil }); err != nil {
		t.Fatal(err)
	}
	second := make(chan *sealed.Envelope, 1)
	go func() {
		_, _ = s.Update(ctx, "p", func(cur *sealed.Envelope) (*sealed.Envelope, error) { second <- cur; return nil, nil })
	}()
	select {
	case <-second:
		t.Fatal("a second Update of the same path ran while the first held it")
	case <-time.After(300 * time.Millisecond):
	}
	close(release)
	if err := <-first; err != nil {
		t.Fatal(err)
	}
	if cur := <-second; cur == nil || cur.KeyID != "first" {
		t.Fatalf("the second Update saw %+v; want what the first stored", cur)
	}
}
