package tiers

import (
	"context"
	"errors"
	"testing"

	"github.com/pgbroker/pgbroker/instance"
	"github.com/pgbroker/pgbroker/patroni"
)

// fakeCluster is the Patroni cluster of one instance, scripted.
type fakeCluster struct {
	Cluster // methods a test does not script panic (nil interface)
	members []patroni.Member
}

func (f *fakeCluster) Members(context.Context) ([]patroni.Member, error) { return f.members, nil }

// fakeDCS records the scopes whose keys were deleted.
type fakeDCS struct{ deleted []string }

func (f *fakeDCS) EnsureUser(context.Context, string, string) error { return nil }

func (f *fakeDCS) DeleteCluster(_ context.Context, scope string) error {
	f.deleted = append(f.deleted, scope)
	return nil
}

// withFakePatroni returns a Changer whose Patroni clusters are
// clusters[short id] and whose DCS is d.
func withFakePatroni(clusters map[string]Cluster, d DCS) *Changer {
	return New(Deps{DCS: d, Clusters: func(_ context.Context, short string) (Cluster, error) {
		if c, ok := clusters[short]; ok {
			return c, nil
		}
		return nil, errors.New("no node with a Patroni REST API is registered in Nomad")
	}})
}

func TestMembersAreThoseOfTheInstancesCluster(t *testing.T) {
	one := &fakeCluster{members: []patroni.Member{{Name: "node-0", Role: "leader", State: "running"}}}
	other := &fakeCluster{members: []patroni.Member{{Name: "node-0", Role: "replica", State: "stopped"}}}
	p := withFakePatroni(map[string]Cluster{"aaaaaaaaaaaa": one, "bbbbbbbbbbbb": other}, &fakeDCS{})
	got, err := p.Members(context.Background(), instance.Instance{ShortID: "bbbbbbbbbbbb"})
	if err != nil {
		t.Fatal(err)
	}
	if patroni.DescribeMembers(got) != "node-0 replica stopped" {
		t.Fatalf("got %q, want the members of instance bbbbbbbbbbbb", patroni.DescribeMembers(got))
	}
	if _, err := p.Members(context.Background(), instance.Instance{ShortID: "cccccccccccc"}); err == nil {
		t.Fatal("an instance without a cluster: got members")
	}
}

func TestPatroniKeysDeletedAreTheInstancesScope(t *testing.T) {
	d := &fakeDCS{}
	p := withFakePatroni(nil, d)
	if err := p.DeletePatroniKeys(context.Background(), "0123456789ab"); err != nil {
		t.Fatal(err)
	}
	if len(d.deleted) != 1 || d.deleted[0] != "pg-0123456789ab" {
		t.Fatalf("deleted scopes %v, want [pg-0123456789ab] (nodes.nomad.hcl scope: pg-<instance>)", d.deleted)
	}
}
