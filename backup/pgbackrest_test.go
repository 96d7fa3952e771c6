package backup

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/nomad/api"

	"github.com/pgbroker/pgbroker/nomad"
)

func TestChooseSetTakesTheLatestBaseBackupSurelyEndedByTheTarget(t *testing.T) {
	at := func(s string) time.Time {
		v, err := time.Parse(time.RFC3339Nano, s)
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	backups := []BaseBackupInfo{
		{Label: "20261116-020000F", Stop: at("2026-11-16T02:00:09Z")},
		{Label: "20261123-020000F", Stop: at("2026-11-23T02:00:09Z")},
	}
	for _, c := range []struct {
		target string
		want   string
	}{
		// In the second the only candidate ended: pgBackRest would refuse it; the oldest is used.
		{"2026-11-16T02:00:09.759Z", "20261116-020000F"},
		{"2026-11-20T00:00:00Z", "20261116-020000F"},
		// In the second the second backup ended: it may have ended after the target.
		{"2026-11-23T02:00:09.999Z", "20261116-020000F"},
		{"2026-11-23T02:00:10Z", "20261123-020000F"},
		{"2026-11-30T00:00:00Z", "20261123-020000F"},
	} {
		if got := chooseSet(backups, at(c.target)); got != c.want {
			t.Errorf("target %s: set %s, want %s", c.target, got, c.want)
		}
	}
}

// pgBackRest's info of one stanza with two full backups (trimmed).
const infoTwoBackups = `[{"name":"abc","backup":[
 {"label":"20261116-020000F","type":"full","timestamp":{"start":1763258400,"stop":1763258409}},
 {"label":"20261123-020000F","type":"full","timestamp":{"start":1763863200,"stop":1763863209}}],
 "status":{"code":0,"message":"ok"}}]`

func TestParseInfoReadsEveryBaseBackupInOrder(t *testing.T) {
	got, err := parseInfo(infoTwoBackups)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || got[0].Label != "20261116-020000F" || got[1].Label != "20261123-020000F" || got[1].Type != "full" ||
		!got[1].Stop.Equal(time.Unix(1763863209, 0)) || got[1].Stop.Location() != time.UTC || !got[0].Start.Equal(time.Unix(1763258400, 0)) {
		t.Fatalf("parseInfo = %+v", got)
	}
	if got, err := parseInfo(`[{"name":"abc","backup":[]}]`); err != nil || len(got) != 0 {
		t.Fatalf("empty stanza: %v, %v", got, err)
	}
	if _, err := parseInfo("ERROR: [055]: unable to load info file"); err == nil {
		t.Fatal("parseInfo accepted what is not pgBackRest's JSON")
	}
}

// TestArchiveAndChooseSetRunsOnTheLeader: a standby's allocation answers
// notLeaderCode and the next one is asked; the set comes from the leader's
// info; a stanza without base backups is an ExecError naming it.
func TestArchiveAndChooseSetRunsOnTheLeader(t *testing.T) {
	n := newFakeNomad()
	n.allocs = []*api.AllocationListStub{
		{ID: "stopped", ClientStatus: api.AllocClientStatusComplete, DesiredStatus: api.AllocDesiredStatusStop},
		{ID: "standby", ClientStatus: api.AllocClientStatusRunning, DesiredStatus: api.AllocDesiredStatusRun},
		{ID: "leader", ClientStatus: api.AllocClientStatusRunning, DesiredStatus: api.AllocDesiredStatusRun},
	}
	var ran []string
	info := infoTwoBackups
	n.exec = func(allocID, script string) (string, error) {
		ran = append(ran, allocID)
		if !strings.HasPrefix(script, leaderOnly) || !strings.Contains(script, "--stanza=abc); pgbackrest \"${c[@]}\" check;") {
			t.Errorf("script %q", script)
		}
		if allocID == "standby" {
			return "", &nomad.ExecError{Code: notLeaderCode, Stderr: "not the Patroni leader"}
		}
		return info, nil
	}
	b := New(n, Config{PITRRepo: "/srv/pgbackrest"}, Hooks{}, nil)
	set, err := b.ArchiveAndChooseSet(context.Background(), "abc", time.Date(2026, 11, 30, 0, 0, 0, 0, time.UTC))
	if err != nil || set != "20261123-020000F" || !slices.Equal(ran, []string{"standby", "leader"}) {
		t.Fatalf("ArchiveAndChooseSet = %q, %v after running on %v", set, err, ran)
	}
	info = `[{"name":"abc","backup":[]}]`
	_, err = b.ArchiveAndChooseSet(context.Background(), "abc", time.Now())
	var ee *nomad.ExecError
	if !errors.As(err, &ee) || !strings.Contains(ee.Stderr, "has no base backup") {
		t.Fatalf("without base backups: %v, want an ExecError", err)
	}
	n.allocs = n.allocs[:2]
	if _, err := b.ArchiveAndChooseSet(context.Background(), "abc", time.Now()); err == nil || !strings.Contains(err.Error(), "Patroni leader") {
		t.Fatalf("without a leader: %v", err)
	}
}

func TestRestoreVarsGiveTheTargetToTheMicrosecondInUTC(t *testing.T) {
	target := time.Date(2026, 11, 20, 3, 4, 5, 123456789, time.FixedZone("CET", 3600))
	own := RestoreVars("op1", "", "20261116-020000F", target)
	if len(own) != 3 || own["pitr_restore_id"] != "op1" || own["pitr_set"] != "20261116-020000F" || own["pitr_target"] != "2026-11-20 02:04:05.123456+00" {
		t.Errorf("own stanza: %v", own)
	}
	if copied := RestoreVars("op1", "src", "s", target); copied["pitr_source"] != "src" || len(copied) != 4 {
		t.Errorf("another instance's stanza: %v", copied)
	}
}
