package servercert

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"strings"
	"testing"

	"github.com/pgbroker/pgbroker/sealed"
)

// copies keeps sealed copies of Variables in memory (sealedcopy.Variables.Restore).
type copies struct {
	v    *variables
	kept map[string]map[string]string
}

func (c *copies) Restore(_ context.Context, path string) (bool, error) {
	items, ok := c.kept[path]
	if !ok {
		return false, fmt.Errorf("%s: %w", path, sealed.ErrNoCopy)
	}
	if _, ok := c.v.items[path]; ok {
		return false, nil
	}
	c.v.items[path] = maps.Clone(items)
	return true, nil
}

func mayMint(ok bool) func(context.Context) (bool, error) {
	return func(context.Context) (bool, error) { return ok, nil }
}

func TestACAWhoseVariableIsLostComesBackFromItsSealedCopy(t *testing.T) {
	v := newVariables()
	before := issuer(t, v).CACertificate()
	c := &copies{v: v, kept: map[string]map[string]string{"pgbroker/test/ca": maps.Clone(v.items["pgbroker/test/ca"])}}
	delete(v.items, "pgbroker/test/ca")
	s := New(v, v, Config{BrokerName: "test"})
	origin, err := s.LoadCA(context.Background(), CASource{Copies: c, MayMint: mayMint(false)})
	if err != nil || origin != CARestored || s.CACertificate() != before {
		t.Fatalf("LoadCA after the Variable was lost: %q, %v, same CA %v; want the CA restored", origin, err, s.CACertificate() == before)
	}
	if origin, err := s.LoadCA(context.Background(), CASource{Copies: c, MayMint: mayMint(false)}); err != nil || origin != CAFromNomad {
		t.Fatalf("LoadCA with the Variable back: %q, %v; want it read from Nomad", origin, err)
	}
}

func TestACALostWhileInstancesExistIsNotMintedAgain(t *testing.T) {
	v := newVariables()
	c := &copies{v: v, kept: map[string]map[string]string{}}
	s := New(v, v, Config{BrokerName: "test"})
	_, err := s.LoadCA(context.Background(), CASource{Copies: c, MayMint: mayMint(false)})
	if !errors.Is(err, ErrCALost) || !containsAll(err.Error(), "pgbroker/test/ca", "pgbroker ca reissue") {
		t.Fatalf("LoadCA with no CA anywhere and instances: %v; want ErrCALost naming the Variable and the command", err)
	}
	if len(v.items) != 0 || s.CA() != nil {
		t.Fatalf("a CA was made although instances exist: %v", v.items)
	}
	origin, err := s.LoadCA(context.Background(), CASource{Copies: c, MayMint: mayMint(true)})
	if err != nil || origin != CAMinted || s.CA() == nil {
		t.Fatalf("LoadCA at first start: %q, %v; want a new CA", origin, err)
	}
}

func TestReissueCAReplacesTheCAAndItsServerCertificatesAreRenewed(t *testing.T) {
	v := newVariables()
	v.gateways = []string{"127.0.0.1"}
	s := issuer(t, v)
	ctx := context.Background()
	old, _, err := s.EnsureServer(ctx, short, s.Hosts(short))
	if err != nil {
		t.Fatal(err)
	}
	before := s.CACertificate()
	cert, err := s.ReissueCA(ctx)
	if err != nil || cert == before || s.CACertificate() != cert || v.items["pgbroker/test/ca"]["certificate"] != cert {
		t.Fatalf("ReissueCA: %v; want a new CA in use and in the Variable", err)
	}
	renewed, issued, err := s.EnsureServer(ctx, short, s.Hosts(short))
	if err != nil || !issued || renewed == old {
		t.Fatalf("EnsureServer after ReissueCA: issued %v, %v; want a new certificate", issued, err)
	}
}

func containsAll(s string, subs ...string) bool {
	for _, sub := range subs {
		if !strings.Contains(s, sub) {
			return false
		}
	}
	return true
}
