package provisioner

import (
	"context"
	"errors"
	"log/slog"
	"testing"
)

// fakeCluster is the Patroni cluster of one instance, scripted.
type fakeCluster struct {
	cluster // methods a test does not script panic (nil interface)
	members []Member
}

func (f *fakeCluster) Members(context.Context) ([]Member, error) { return f.members, nil }

// fakeDCS records the scopes whose keys were deleted.
type fakeDCS struct{ deleted []string }

func (f *fakeDCS) DeleteCluster(_ context.Context, scope string) error {
	f.deleted = append(f.deleted, scope)
	return nil
}

// withFakePatroni returns a Provisioner whose Patroni clusters are
// clusters[short id] and whose DCS is d.
func withFakePatroni(clusters map[string]cluster, d dcs) *Provisioner {
	return newWith(adapters{dcs: d, clusters: func(_ context.Context, short string) (cluster, error) {
		if c, ok := clusters[short]; ok {
			return c, nil
		}
		return nil, errors.New("no node with a Patroni REST API is registered in Nomad")
	}}, Config{}, slog.New(slog.DiscardHandler))
}

func TestMembersAreThoseOfTheInstancesCluster(t *testing.T) {
	one := &fakeCluster{members: []Member{{Name: "node-0", Role: "leader", State: "running"}}}
	other := &fakeCluster{members: []Member{{Name: "node-0", Role: "replica", State: "stopped"}}}
	p := withFakePatroni(map[string]cluster{"aaaaaaaaaaaa": one, "bbbbbbbbbbbb": other}, &fakeDCS{})
	got, err := p.Members(context.Background(), Instance{ShortID: "bbbbbbbbbbbb"})
	if err != nil {
		t.Fatal(err)
	}
	if DescribeMembers(got) != "node-0 replica stopped" {
		t.Fatalf("got %q, want the members of instance bbbbbbbbbbbb", DescribeMembers(got))
	}
	if _, err := p.Members(context.Background(), Instance{ShortID: "cccccccccccc"}); err == nil {
		t.Fatal("an instance without a cluster: got members")
	}
}

func TestPatroniKeysDeletedAreTheInstancesScope(t *testing.T) {
	d := &fakeDCS{}
	p := withFakePatroni(nil, d)
	if err := p.deletePatroniKeys(context.Background(), "0123456789ab"); err != nil {
		t.Fatal(err)
	}
	if len(d.deleted) != 1 || d.deleted[0] != "pg-0123456789ab" {
		t.Fatalf("deleted scopes %v, want [pg-0123456789ab] (nodes.nomad.hcl scope: pg-<instance>)", d.deleted)
	}
}
