package pitr

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/pgbroker/pgbroker/instance"
	"github.com/pgbroker/pgbroker/naming"
)

// Unit tests of the restores' step order against the fakes of
// fake_test.go; the provisioner's tests run them on its in-memory Nomad
// and Patroni as well, crashes included.

const testShort = "0123456789ab"

var target = time.Date(2026, 11, 20, 0, 0, 0, 0, time.UTC)

func starter() instance.Size  { return instance.Size{Nodes: 1, Gateways: 1, PITRDays: 7} }
func business() instance.Size { return instance.Size{Nodes: 2, Gateways: 2, PITRDays: 7} }

func restorer(f *fake) *Restorer { return New(f, f, f, f, f) }

func nop(string) {}

func in() instance.Instance {
	return instance.Instance{ShortID: testShort, GatewayPort: 31000, NodeID: "client-1"}
}

func sameSteps(t *testing.T, got, want []string) {
	t.Helper()
	if !slices.Equal(got, want) {
		t.Errorf("steps:\n  %s\nwant:\n  %s", strings.Join(got, "\n  "), strings.Join(want, "\n  "))
	}
}

var (
	nodes   = naming.NodesJobID(testShort)
	archive = "archive " + testShort + " until 2026-11-20T00:00:00Z"
	keys    = "pitr-keys " + testShort
	vars    = "[pitr_restore_id=r1 pitr_set=20261116-020000F pitr_target=2026-11-20 00:00:00.000000+00]"
)

func TestPointInTimeRestoreStepOrder(t *testing.T) {
	for _, c := range []struct {
		name string
		size instance.Size
		want []string
	}{
		// The running node archives its latest WAL, then the node job is
		// registered once with the restore, waited for, and PostgreSQL
		// replays WAL up to the target.
		{"Starter", starter(), []string{
			archive, keys, "render nodes=1 node_id=client-1 " + vars,
			"register v1 nodes=1 restore=r1", "wait " + nodes + " v1 x1", "ready",
		}},
		// A single node first, on node-0's client; restored like a
		// Starter; then a cluster again, pinned to node-0's client.
		{"Business", business(), []string{
			"to-single nodes=1",
			archive, keys, "render nodes=1 node_id=client-0 " + vars,
			"register v1 nodes=1 restore=r1", "wait " + nodes + " v1 x1", "ready",
			"to-cluster nodes=2 node_id=client-0",
		}},
	} {
		t.Run(c.name, func(t *testing.T) {
			f := newFake(c.size.Nodes)
			r := restorer(f)
			if err := r.RestoreToTime(context.Background(), in(), c.size, "r1", target, nop); err != nil {
				t.Fatal(err)
			}
			sameSteps(t, f.log, c.want)
			done, err := r.RestoreRegistered(context.Background(), in(), "r1")
			if err != nil || !done {
				t.Errorf("RestoreRegistered = %v, %v after the restore", done, err)
			}
		})
	}
}

// TestPointInTimeRestoreRunAgainRestoresOnce: a run after the restore was
// registered (a crash, a retry) waits for that job version, and a Business
// one whose data holds the restore's marker only makes the cluster again:
// neither archives, renders nor registers a second restore.
func TestPointInTimeRestoreRunAgainRestoresOnce(t *testing.T) {
	t.Run("Registered", func(t *testing.T) {
		f := newFake(1)
		r := restorer(f)
		if err := r.RestoreToTime(context.Background(), in(), starter(), "r1", target, nop); err != nil {
			t.Fatal(err)
		}
		f.log = nil
		if err := r.RestoreToTime(context.Background(), in(), starter(), "r1", target, nop); err != nil {
			t.Fatal(err)
		}
		sameSteps(t, f.log, []string{"wait " + nodes + " v1 x1", "ready"})
	})
	t.Run("BusinessMadeACluster", func(t *testing.T) {
		f := newFake(2)
		f.marker = "r1"
		if err := restorer(f).RestoreToTime(context.Background(), in(), business(), "r1", target, nop); err != nil {
			t.Fatal(err)
		}
		sameSteps(t, f.log, []string{"to-cluster nodes=2 node_id=client-0"})
	})
	t.Run("AnotherRestoreIsNotThisOne", func(t *testing.T) {
		f := newFake(2)
		f.marker = "r0"
		done, err := restorer(f).RestoreRegistered(context.Background(), in(), "r1")
		if err != nil || done {
			t.Errorf("RestoreRegistered(r1) = %v, %v with the marker of r0", done, err)
		}
	})
}

// TestCopyFromStanzaAdoptsTheSourcesClusterAndArchivesToItsOwnStanza: the
// source's WAL is archived and restored into the copy's node, which
// PostgreSQL first lets in with the source's admin password only; the
// copy adopts the cluster (the source's database renamed, its own admin
// password set), then creates its own stanza.
func TestCopyFromStanzaAdoptsTheSourcesClusterAndArchivesToItsOwnStanza(t *testing.T) {
	f := newFake(1)
	f.accepts = "theirs"
	source := "fedcba987654"
	if err := restorer(f).RestoreFromStanza(context.Background(), in(), starter(), source, "r1", target, nop); err != nil {
		t.Fatal(err)
	}
	sameSteps(t, f.log, []string{
		"archive " + source + " until 2026-11-20T00:00:00Z", keys,
		"render nodes=1 node_id=client-1 [pitr_restore_id=r1 pitr_set=20261116-020000F pitr_source=" + source + " pitr_target=2026-11-20 00:00:00.000000+00]",
		"register v1 nodes=1 restore=r1", "wait " + nodes + " v1 x1",
		"adopt db_" + source + " -> db_" + testShort + " as theirs, admin password own",
		"stanza-create " + testShort,
	})
}
