package nomadjobs_test

import (
	"fmt"
	"strings"
	"testing"

	nomadjobs "github.com/pgbroker/pgbroker/nomad-jobs"
)

// TestNodesArchiveWALOnlyWithAPITRRepository: with pitr_repo the node task
// renders the archive settings and pgBackRest's configuration (stanza named
// after the instance); without it, neither. A restore target in another
// shape is refused by the job file itself.
func TestNodesArchiveWALOnlyWithAPITRRepository(t *testing.T) {
	client := nomadClient(t)
	base := jobFiles("raw_exec")[0]
	for _, repo := range []string{"", "/srv/pgbroker/pgbackrest"} {
		vars := map[string]any{}
		for k, v := range base.vars {
			vars[k] = v
		}
		vars["pitr_repo"] = repo
		job := mustParse(t, client, jobFile{name: "nodes", src: base.src, vars: vars})
		var names []string
		archive := ""
		for _, tmpl := range job.TaskGroups[0].Tasks[0].Templates {
			names = append(names, *tmpl.DestPath)
			if *tmpl.DestPath == "local/pitr.conf" {
				archive = *tmpl.EmbeddedTmpl
			}
		}
		joined := strings.Join(names, " ")
		if want := repo != ""; strings.Contains(joined, "secrets/pgbackrest.conf") != want || strings.Contains(joined, "local/pitr.conf") != want {
			t.Errorf("pitr_repo %q: templates %s", repo, joined)
		}
		if repo != "" && (!strings.Contains(archive, "archive_timeout = 60") || !strings.Contains(archive, "--stanza="+instance+" archive-push")) {
			t.Errorf("archive settings:\n%s", archive)
		}
	}
	for _, target := range []string{"yesterday", "2026-11-23T16:50:00Z", "2026-11-23 16:50:00'; rm -rf /"} {
		vars := map[string]any{"pitr_repo": "/srv/r", "pitr_restore_id": "op-1", "pitr_target": target}
		for k, v := range base.vars {
			vars[k] = v
		}
		if _, err := parse(t, client, "nodes", nomadjobs.Nodes, vars); err == nil {
			t.Errorf("pitr_target %q accepted", target)
		}
	}
}

// TestCleanupDeletesTheStanzaWithAPITRRepository: the cleanup job removes the
// instance's pgBackRest archive and backup directories too.
func TestCleanupDeletesTheStanzaWithAPITRRepository(t *testing.T) {
	client := nomadClient(t)
	vars := map[string]any{"instance": instance, "driver": "raw_exec", "data_root": "/srv/pgbroker/data", "pitr_repo": "/srv/pgbroker/pgbackrest"}
	job := mustParse(t, client, jobFile{name: "cleanup", src: nomadjobs.Cleanup, vars: vars})
	args, _ := job.TaskGroups[0].Tasks[0].Config["args"].([]any)
	var words []string
	for _, a := range args {
		words = append(words, fmt.Sprint(a))
	}
	got := strings.Join(words, " ")
	for _, want := range []string{"/srv/pgbroker/data/" + instance, "/srv/pgbroker/pgbackrest/archive/" + instance, "/srv/pgbroker/pgbackrest/backup/" + instance} {
		if !strings.Contains(got, want) {
			t.Errorf("cleanup args %s lack %s", got, want)
		}
	}
}

// TestNodesRestoreAnotherInstancesStanzaWithPITRSource: with pitr_source the
// start script empties the instance's own stanza and restores the source's
// stanza into its data directory; a source in another shape is refused by
// the job file itself.
func TestNodesRestoreAnotherInstancesStanzaWithPITRSource(t *testing.T) {
	client := nomadClient(t)
	base := jobFiles("raw_exec")[0]
	vars := map[string]any{}
	for k, v := range base.vars {
		vars[k] = v
	}
	vars["pitr_repo"], vars["pitr_restore_id"], vars["pitr_target"] = "/srv/r", "op-1", "2026-11-23 16:50:00.123456+00"
	vars["pitr_source"] = "0123456789ab"
	job := mustParse(t, client, jobFile{name: "nodes", src: base.src, vars: vars})
	start := ""
	for _, tmpl := range job.TaskGroups[0].Tasks[0].Templates {
		if *tmpl.DestPath == "local/start.sh" {
			start = *tmpl.EmbeddedTmpl
		}
	}
	for _, want := range []string{
		"rm -rf --one-file-system -- '/srv/r/archive/" + instance + "' '/srv/r/backup/" + instance + "'",
		"--stanza='0123456789ab' --pg1-path=\"$data_dir\"",
		"--target='2026-11-23 16:50:00.123456+00'",
	} {
		if !strings.Contains(start, want) {
			t.Errorf("start script lacks %q:\n%s", want, start)
		}
	}
	for _, source := range []string{"../x", "ABC", "a b", "x'; rm -rf /"} {
		vars["pitr_source"] = source
		if _, err := parse(t, client, "nodes", nomadjobs.Nodes, vars); err == nil {
			t.Errorf("pitr_source %q accepted", source)
		}
	}
}

// TestBaseBackupReachesTheNodesSocketDirectory: the base backup job's
// pgbackrest.conf names the node's data directory and the socket directory
// the node uses, <data_root>/<instance>/run-<index>, or /run/postgresql when
// that path plus "/.s.PGSQL.<port>" would exceed 107 bytes; the node job's
// pgbackrest.conf and patroni.yml follow the same rule.
func TestBaseBackupReachesTheNodesSocketDirectory(t *testing.T) {
	client := nomadClient(t)
	base := jobFiles("raw_exec")[len(jobFiles("raw_exec"))-1]
	long := "/srv/" + strings.Repeat("d", 90-len("/srv/")-len("/"+instance+"/run-1")) // run dir of 90 bytes: fits
	for _, c := range []struct{ root, socket string }{
		{"/srv/pgbroker/data", "/srv/pgbroker/data/" + instance + "/run-1"},
		{long, long + "/" + instance + "/run-1"},
		{long + "x", "/run/postgresql"},
	} {
		vars := map[string]any{}
		for k, v := range base.vars {
			vars[k] = v
		}
		vars["data_root"] = c.root
		job := mustParse(t, client, jobFile{name: base.name, src: base.src, vars: vars})
		conf := ""
		for _, tmpl := range job.TaskGroups[0].Tasks[0].Templates {
			if *tmpl.DestPath == "local/pgbackrest.conf" {
				conf = *tmpl.EmbeddedTmpl
			}
		}
		for _, want := range []string{"pg1-socket-path=" + c.socket + "\n", "pg1-path=" + c.root + "/" + instance + "/node-1\n", "pg1-port=35001\n", "[" + instance + "]"} {
			if !strings.Contains(conf, want) {
				t.Errorf("data_root %s: pgbackrest.conf lacks %q:\n%s", c.root, want, conf)
			}
		}
	}
	nodes := jobFiles("raw_exec")[2] // Patroni
	vars := map[string]any{"pitr_repo": "/srv/r"}
	for k, v := range nodes.vars {
		vars[k] = v
	}
	job := mustParse(t, client, jobFile{name: "nodes", src: nodes.src, vars: vars})
	rule := `{{ $s := printf "%s/run-%s" "/srv/pgbroker/data/` + instance + `" (env "NOMAD_GROUP_NAME" | replaceAll "node-" "") }}{{ if gt (len $s) 90 }}/run/postgresql{{ else }}{{ $s }}{{ end }}`
	for _, tmpl := range job.TaskGroups[0].Tasks[0].Templates {
		switch *tmpl.DestPath {
		case "secrets/pgbackrest.conf":
			if !strings.Contains(*tmpl.EmbeddedTmpl, "pg1-socket-path="+rule+"\n") {
				t.Errorf("node pgbackrest.conf lacks the socket rule:\n%s", *tmpl.EmbeddedTmpl)
			}
		case "secrets/patroni.yml":
			if !strings.Contains(*tmpl.EmbeddedTmpl, "unix_socket_directories: '"+rule+"'") {
				t.Errorf("patroni.yml lacks the socket rule:\n%s", *tmpl.EmbeddedTmpl)
			}
		case "local/start.sh":
			if !strings.Contains(*tmpl.EmbeddedTmpl, `socket_dir="$instance_dir/run-${NOMAD_GROUP_NAME#node-}"`) {
				t.Errorf("start.sh does not put the socket in the run directory:\n%s", *tmpl.EmbeddedTmpl)
			}
		}
	}
}
