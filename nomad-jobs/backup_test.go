package nomadjobs_test

import (
	"encoding/json"
	"maps"
	"regexp"
	"strings"
	"testing"

	"github.com/hashicorp/nomad/api"

	nomadjobs "github.com/pgbroker/pgbroker/nomad-jobs"
)

// testCAPEM stands for the broker's CA in a job's variables (only its shape
// is checked when parsing).
const testCAPEM = "-----BEGIN CERTIFICATE-----\nMIIBdzCCAR2gAwIBAgIQ\n-----END CERTIFICATE-----\n"

// TestBackupModeShapesTheJob: the mode names the task group, the task and
// its script; a dump logs in with the admin password and is tried once more
// in place, a restore with the restore role's password only and never again
// (it rolled back); each script runs its own tool only, and verifies the
// server (verify-full, channel binding).
func TestBackupModeShapesTheJob(t *testing.T) {
	client := nomadClient(t)
	cases := []struct {
		mode, item, tool, otherTool string
		attempts                    int
	}{
		{nomadjobs.ModeDump, "admin_password", "/pg_dump\"", "pg_restore", 1},
		{nomadjobs.ModeRestore, "restore_password", "/pg_restore\"", "pg_dump", 0},
	}
	for _, driver := range drivers {
		for _, c := range cases {
			t.Run(c.mode+"/"+driver, func(t *testing.T) {
				f := jobFileNamed(t, c.mode)
				job, err := parse(t, client, f.name, f.src, varsOf(f, map[string]any{"driver": driver, "pg_host": "10.0.0.7", "broker_ca": testCAPEM}))
				if err != nil {
					t.Fatalf("parse: %v", err)
				}
				group := job.TaskGroups[0]
				task := group.Tasks[0]
				if *group.Name != c.mode || task.Name != c.mode {
					t.Errorf("group %s task %s, want both %s", *group.Name, task.Name, c.mode)
				}
				if args := task.Config["args"].([]any); len(args) != 1 || args[0] != "${NOMAD_TASK_DIR}/"+c.mode+".sh" {
					t.Errorf("args %v, want the task's %s.sh", args, c.mode)
				}
				if *group.RestartPolicy.Attempts != c.attempts {
					t.Errorf("restart attempts %d, want %d", *group.RestartPolicy.Attempts, c.attempts)
				}
				env := templateText(t, task, "secrets/pg.env")
				if want := "PGPASSWORD={{ ." + c.item + ".Value | toJSON }}"; !strings.Contains(env, want) {
					t.Errorf("secrets/pg.env lacks %s:\n%s", want, env)
				}
				script := templateText(t, task, "local/"+c.mode+".sh")
				if !strings.Contains(script, c.tool) || strings.Contains(script, c.otherTool) {
					t.Errorf("%s.sh: want %s and no %s:\n%s", c.mode, c.tool, c.otherTool, script)
				}
				// Issue 12 hole 5: the server verified against the broker's
				// CA by the node service's name while connecting to the
				// gateway's address, SCRAM bound to the TLS channel.
				for _, want := range []string{"export PGCHANNELBINDING=require PGHOSTADDR='10.0.0.7'", "export PGSSLMODE=verify-full PGSSLROOTCERT=",
					"host='pg-" + instance + "-node'", `--host="$host"`} {
					if !strings.Contains(script, want) {
						t.Errorf("%s.sh lacks %s:\n%s", c.mode, want, script)
					}
				}
				if strings.Contains(script, "PGSSLMODE=require") || templateText(t, task, "local/broker-ca.pem") != testCAPEM {
					t.Errorf("%s.sh: a job given broker_ca must verify the server against it", c.mode)
				}
			})
		}
	}
}

// TestBackupRefusesAnUnknownMode: no other mode parses (a base backup has
// its own job file), and the error names the variable.
func TestBackupRefusesAnUnknownMode(t *testing.T) {
	client := nomadClient(t)
	f := jobFileNamed(t, "dump")
	for _, mode := range []string{"", "basebackup", "Dump", "dump restore"} {
		if _, err := parse(t, client, f.name, f.src, varsOf(f, map[string]any{"mode": mode})); err == nil || !strings.Contains(err.Error(), "mode") {
			t.Errorf("mode %q: %v, want an error naming mode", mode, err)
		}
	}
}

// TestDumpIsWrittenUnderItsOwnInstanceWhateverSourceInstance: source_instance
// is a restore's; a dump given one still writes, and uploads, under its own
// instance, never into another instance's directory.
func TestDumpIsWrittenUnderItsOwnInstanceWhateverSourceInstance(t *testing.T) {
	client := nomadClient(t)
	const other = "ba9876543210"
	f := jobFileNamed(t, "dump")
	job, err := parse(t, client, f.name, f.src, varsOf(f, map[string]any{"source_instance": other}))
	if err != nil {
		t.Fatalf("parse: %v", err)
	}
	script := templateText(t, job.TaskGroups[0].Tasks[0], "local/dump.sh")
	if want := "dir='/srv/pgbroker/backups/" + instance + "'"; !strings.Contains(script, want) || strings.Contains(script, other) {
		t.Errorf("dump.sh with source_instance %s: want %s and no %s:\n%s", other, want, other, script)
	}
}

// varsOf returns the variables of f with those of over in their place.
func varsOf(f jobFile, over map[string]any) map[string]any {
	vars := maps.Clone(f.vars)
	maps.Copy(vars, over)
	return vars
}

// byHand matches the by-hand commands of backup.nomad.hcl's header, joined
// on one line: the Variable's path and the -var arguments.
var (
	byHandVarPut = regexp.MustCompile(`nomad var put (\S+) (\w+)=- `)
	byHandRun    = regexp.MustCompile(`nomad job run ((?:-var \S+ )+)nomad-jobs/backup\.nomad\.hcl`)
	byHandVar    = regexp.MustCompile(`-var (\w+)=(\S+)`)
)

// TestBackupByHandCommandOfTheHeaderWorks: the command the header gives
// parses, in both modes, into the job whose Variable the header's nomad var
// put writes (nomad/jobs/<job ID>), and the item it names is the one the
// task reads.
func TestBackupByHandCommandOfTheHeaderWorks(t *testing.T) {
	client := nomadClient(t)
	var header []string
	for _, line := range strings.Split(nomadjobs.Backup, "\n") {
		if !strings.HasPrefix(line, "#") {
			break
		}
		header = append(header, strings.TrimSuffix(strings.TrimSpace(strings.TrimPrefix(line, "#")), `\`))
	}
	text := strings.Join(strings.Fields(strings.Join(header, " ")), " ") + " "
	put, run := byHandVarPut.FindStringSubmatch(text), byHandRun.FindStringSubmatch(text)
	if put == nil || run == nil {
		t.Fatalf("the header gives no nomad var put and nomad job run commands:\n%s", text)
	}
	vars := map[string]string{}
	for _, m := range byHandVar.FindAllStringSubmatch(run[1], -1) {
		vars[m[1]] = m[2]
	}
	for _, c := range []struct{ mode, item string }{{"dump", put[2]}, {"restore", "restore_password"}} {
		t.Run(c.mode, func(t *testing.T) {
			vars["mode"] = c.mode
			encoded, err := json.Marshal(vars)
			if err != nil {
				t.Fatal(err)
			}
			job, err := client.Jobs().ParseHCLOpts(&api.JobsParseRequest{JobHCL: nomadjobs.Backup, Variables: string(encoded), Canonicalize: true})
			if err != nil {
				t.Fatalf("parse with the header's variables %v: %v", vars, err)
			}
			path := strings.Replace(put[1], "-dump-", "-"+c.mode+"-", 1)
			if "nomad/jobs/"+*job.ID != path || *job.Name != *job.ID {
				t.Errorf("job ID %s name %s; the header puts the Variable at %s", *job.ID, *job.Name, path)
			}
			if env := templateText(t, job.TaskGroups[0].Tasks[0], "secrets/pg.env"); !strings.Contains(env, "."+c.item+".Value") {
				t.Errorf("the header puts item %s, the task reads:\n%s", c.item, env)
			}
		})
	}
	if put[2] != "admin_password" || !strings.Contains(text, "restore_password") {
		t.Errorf("the header names items %q and not restore_password for a restore", put[2])
	}
}
