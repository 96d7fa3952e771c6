//go:build stackrestart

// The tests here restart the whole local stack (scripts/stack.sh down, then
// up: Nomad's dev agent loses its state, its client agents, etcd and the
// state PostgreSQL restart). Every other test of the stack, in this package
// or another package that `go test ./...` runs beside it, would lose its
// instances too, so they are built only with -tags stackrestart and run by
// scripts/test.sh as a step of their own, after every other package.

package acceptance

import (
	"bufio"
	"fmt"
	"maps"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/pgbroker/pgbroker/naming"
)

// restartPlans are the plans TestWholeStackRestartBringsEveryInstanceBack
// provisions, one instance each: every plan of the catalog's three tiers.
var restartPlans = []string{
	"postgresql-sandbox",
	"postgresql-starter-512",
	businessPlan,
}

// survivor is an instance provisioned before a restart: what it must come
// back with.
type survivor struct {
	plan, id, databaseURL, body string
	clients                     map[string]string // task group (node-0, node-1) → the Nomad node ID it ran on
}

// TestWholeStackRestartBringsEveryInstanceBack: instances of every plan,
// each with a row; the broker stops, the whole stack goes down and comes
// up again (`make stack-down`, then `make run`'s stack up: Nomad's dev
// agent starts empty), the broker starts again. Every instance is back on
// the client holding its data, with its row, through the DATABASE_URL and
// password handed out before, verified against the CA handed out before.
func TestWholeStackRestartBringsEveryInstanceBack(t *testing.T) {
	b := newBroker(t, "PGBROKER_RECONCILE_INTERVAL="+reconcileInterval.String())
	var before []survivor
	for _, plan := range restartPlans {
		body := "before the restart, " + plan
		id, databaseURL, _ := instanceWithARow(t, b, plan, body)
		before = append(before, survivor{plan: plan, id: id, databaseURL: databaseURL, body: body, clients: groupClients(t, naming.NodesJobID(naming.ShortID(id)))})
	}
	b.stop()
	restartStack(t)
	b.start()
	start := time.Now()
	for _, s := range before {
		waitBack(t, b, s, start, 3*time.Minute)
	}
}

// TestDeploymentRestoredFromItsBackupsBringsInstancesBack follows the
// README's "Disaster recovery" section, running its shell blocks as they
// are written: back up (the state database's dump; the dev agent cannot
// take a Nomad snapshot), lose the
// state database and Nomad's state (the database dropped, the stack
// restarted), restore the state database from the dump, start the broker
// with the same key and name. The Starter instance is back with its row
// and its old DATABASE_URL.
func TestDeploymentRestoredFromItsBackupsBringsInstancesBack(t *testing.T) {
	b := newBroker(t, "PGBROKER_RECONCILE_INTERVAL="+reconcileInterval.String())
	body := "before the disaster"
	id, databaseURL, _ := starterWithARow(t, b, body)
	s := survivor{plan: "postgresql-starter-512", id: id, databaseURL: databaseURL, body: body,
		clients: groupClients(t, naming.NodesJobID(naming.ShortID(id)))}

	backups := t.TempDir()
	env := drEnv(t, b, backups)
	runReadmeBlock(t, "dr-backup", env)
	if fi, err := os.Stat(filepath.Join(backups, "pgbroker-state.dump")); err != nil || fi.Size() == 0 {
		t.Fatalf("the backup step left no pgbroker-state.dump in $BACKUP: %v", err)
	}

	b.stop()
	execState(t, "DROP DATABASE "+b.name+" WITH (FORCE)")
	restartStack(t)
	if err := connects(databaseURL); err == nil {
		t.Fatal("DATABASE_URL connects after the stack restart: Nomad's state was not lost")
	}

	runReadmeBlock(t, "dr-restore", env)
	b.start()
	if _, err := tryInstanceAttributes(b, id); err != nil {
		t.Fatalf("the broker on the restored state database does not know the instance: %v", err)
	}
	waitBack(t, b, s, time.Now(), 3*time.Minute)
}

// drEnv is the environment the README's disaster-recovery blocks name:
// BACKUP (where backups go), PGBROKER_DATABASE_URL (b's state database),
// ADMIN_URL (a role allowed to CREATE DATABASE), STATE_DB and STATE_ROLE
// (the state database's name and owner).
func drEnv(t *testing.T, b *broker, backups string) []string {
	t.Helper()
	u, err := url.Parse(b.stateDB)
	if err != nil {
		t.Fatal(err)
	}
	return append(os.Environ(), "BACKUP="+backups, "PGBROKER_DATABASE_URL="+b.stateDB, "ADMIN_URL="+stateURL,
		"STATE_DB="+b.name, "STATE_ROLE="+u.User.Username())
}

// restartStack runs `scripts/stack.sh down`, then `up`, and fails the test
// with their output when either fails.
func restartStack(t *testing.T) {
	t.Helper()
	start := time.Now()
	for _, command := range []string{"down", "up"} {
		out, err := exec.Command("bash", "../scripts/stack.sh", command).CombinedOutput()
		if err != nil {
			t.Fatalf("scripts/stack.sh %s: %v\n%s", command, err, out)
		}
	}
	t.Logf("stack down and up again in %s", time.Since(start).Round(100*time.Millisecond))
}

// waitBack waits until s's DATABASE_URL connects (from start, up to limit),
// then checks its row, that GET instance says "running", and that each of
// its nodes runs on the client it ran on before.
func waitBack(t *testing.T, b *broker, s survivor, start time.Time, limit time.Duration) {
	t.Helper()
	if err := waitConnects(s.databaseURL, start, limit); err != nil {
		t.Fatalf("%s: the DATABASE_URL handed out before does not connect %s after the broker started: %v\nGET instance status: %q\nthe broker's last word on it: %s",
			s.plan, limit, err, instanceStatus(t, b, s.id), tail(grepLines(b.logs.String(), `"instance_id":"`+s.id+`"`), 1))
	}
	t.Logf("%s back %s after the broker started", s.plan, time.Since(start).Round(100*time.Millisecond))
	if got, err := keptRow(t, s.databaseURL); err != nil || got != s.body {
		t.Errorf("%s: row after the restart: %q, %v; want %q", s.plan, got, err, s.body)
	}
	waitStatus(t, b, s.id, func(st string) bool { return st == "running" }, 30*time.Second)
	// Each node on the client holding its own data (Business: both nodes).
	if got := groupClients(t, naming.NodesJobID(naming.ShortID(s.id))); !maps.Equal(got, s.clients) {
		t.Errorf("%s: node allocations after the restart on %v; want %v", s.plan, got, s.clients)
	}
}

// runReadmeBlock runs, with bash -euo pipefail and env, the shell block
// that follows the line `<!-- test: NAME -->` in README.md.
func runReadmeBlock(t *testing.T, name string, env []string) {
	t.Helper()
	script := readmeBlock(t, name)
	cmd := exec.Command("bash", "-euo", "pipefail", "-c", script)
	cmd.Env = env
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("README block %q failed: %v\n--- block\n%s--- output\n%s", name, err, script, out)
	}
	t.Logf("README block %q:\n%s", name, out)
}

// readmeBlock returns the body of the fenced block after `<!-- test: NAME -->`.
func readmeBlock(t *testing.T, name string) string {
	t.Helper()
	f, err := os.Open("../README.md")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var body strings.Builder
	state := 0 // 0 looking for the marker, 1 for the fence, 2 inside
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := sc.Text()
		switch {
		case state == 0 && strings.TrimSpace(line) == "<!-- test: "+name+" -->":
			state = 1
		case state == 1 && strings.HasPrefix(strings.TrimSpace(line), "```"):
			state = 2
		case state == 2 && strings.HasPrefix(strings.TrimSpace(line), "```"):
			return body.String()
		case state == 2:
			fmt.Fprintln(&body, line)
		}
	}
	t.Fatalf("README.md has no shell block after <!-- test: %s --> (state %d)", name, state)
	return ""
}
