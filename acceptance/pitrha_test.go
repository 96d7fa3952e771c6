package acceptance

import (
	"context"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/pgbroker/pgbroker/naming"
)

// assertBackedUpFromTheStandby: the first base backup of a Business instance
// (Patroni, two nodes) ran as one batch job on a client other than the
// leader's (ran: the clients its allocations were placed on), and pgBackRest
// recorded it as a backup-standby backup in manifest.
func assertBackedUpFromTheStandby(t *testing.T, in *pitrInstance, ran []string, manifest string) {
	t.Helper()
	app := connect(t, in.url())
	leading := leaderAlloc(t, app, runningAllocs(t, naming.NodesJobID(in.short)))
	app.Close(context.Background())
	if len(ran) != 1 || ran[0] == leading.NodeID {
		t.Errorf("the base backup job ran on clients %v, want one, not the leader's (%s)", ran, leading.NodeID)
	}
	content, err := os.ReadFile(manifest)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(content), "option-backup-standby=true") {
		t.Errorf("%s does not record a backup from the standby (option-backup-standby=true)", manifest)
	}
}

// assertClusterAgain: a Business instance restored in place ends as a
// cluster again: two nodes with a synchronous standby, two gateways, its
// leader on a timeline past the one before the restore, whose history file
// reaches the repository (the restored cluster archives), and read_only_uri
// reads the restored rows from a standby cloned afresh.
func assertClusterAgain(t *testing.T, in *pitrInstance, repo pitrRepo, at rowsAt, timelineBefore int) {
	t.Helper()
	waitClusterHealthy(t, in.short, 2*time.Minute)
	if n, g := len(runningAllocs(t, naming.NodesJobID(in.short))), len(runningAllocs(t, naming.GatewaysJobID(in.short))); n != 2 || g != 2 {
		t.Fatalf("after the restore: %d nodes and %d gateways running, want 2 of each", n, g)
	}
	_, timeline := leaderTimeline(t, in.short)
	if timeline <= timelineBefore {
		t.Errorf("leader timeline %d after the restore, want above %d (the restore promotes)", timeline, timelineBefore)
	}
	history := fmt.Sprintf("/%08X.history", timeline)
	for deadline := time.Now().Add(time.Minute); !hasSuffix(repo.files(t, "archive", in.short), history); time.Sleep(time.Second) {
		if time.Now().After(deadline) {
			t.Fatalf("no %s in the %s repository a minute after the restore", history, repo.name)
		}
	}
	want := 0
	for _, n := range at.byTime {
		want += n
	}
	standby := connect(t, in.creds["read_only_uri"].(string))
	defer standby.Close(context.Background())
	for deadline := time.Now().Add(time.Minute); count(t, standby, "items") != want; time.Sleep(500 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("the standby has %d rows a minute after the restore, want %d", count(t, standby, "items"), want)
		}
	}
	assertRowsByTime(t, standby, "through read_only_uri", at.byTime)
}

func hasSuffix(list []string, suffix string) bool {
	for _, x := range list {
		if strings.HasSuffix(x, suffix) {
			return true
		}
	}
	return false
}
