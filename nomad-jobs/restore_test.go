package nomadjobs_test

import (
	"os"
	"os/exec"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/hashicorp/nomad/api"

	nomadjobs "github.com/pgbroker/pgbroker/nomad-jobs"
)

// restoreList is pg_restore 15's --list of a dump with two extensions and
// tenant objects named to look like their entries (newlines in names come
// out as spaces), taken from a real dump.
var restoreList = []struct {
	line string
	kept bool
}{
	{";     Dump Version: 1.14-0", true},
	{"10; 2615 18082 SCHEMA - EXTENSION db_x", true},
	{`3516; 0 0 COMMENT - SCHEMA "EXTENSION" db_x`, true},
	{"3; 3079 17914 EXTENSION - citext ", false},
	{"3518; 0 0 COMMENT - EXTENSION citext ", false},
	{"2; 3079 17877 EXTENSION - pgcrypto ", false},
	{"3519; 0 0 COMMENT - EXTENSION pgcrypto ", false},
	{"224; 1259 18079 TABLE - EXTENSION - pgcrypto db_x", true},
	{`3520; 0 0 COMMENT - TABLE "EXTENSION - pgcrypto" db_x`, true},
	{"225; 1259 18083 TABLE public multi 3; 3079 16428 EXTENSION - citext db_x", true},
	{`3521; 0 0 ACL public TABLE "multi 3; 3079 16428 EXTENSION - citext" db_x`, true},
	{"3507; 0 18083 TABLE DATA public multi 3; 3079 16428 EXTENSION - citext db_x", true},
	{"3347; 1259 16550 INDEX public t_x db_x", true},
	{"6; 2615 16390 SCHEMA - extensions pgbroker_admin", false},
	{"3355; 0 0 ACL - SCHEMA extensions pgbroker_admin", false},
	{"226; 1259 18090 TABLE public SCHEMA - extensions db_x", true},
	{"11; 2615 18091 SCHEMA - extensions_of_mine db_x", true},
	{"3348; 2620 16551 TRIGGER public t t_trg db_x", true},
}

// extensionEntries is the backup job's local.extension_entries, the
// extended regular expression of the --list lines it leaves out.
func extensionEntries(t *testing.T) string {
	t.Helper()
	m := regexp.MustCompile(`(?m)^\s*extension_entries\s*=\s*"([^"]*)"`).FindStringSubmatch(nomadjobs.Backup)
	if m == nil {
		t.Fatal("backup.nomad.hcl has no local extension_entries")
	}
	return m[1]
}

// TestRestoreListLeavesOutOnlyTheExtensionsEntries: the filter drops the
// dump's CREATE EXTENSION and COMMENT ON EXTENSION entries (they need a
// superuser) and keeps every tenant object, even one named like them.
// Checked with Go's regexp and, where installed, grep -E as the job runs it.
func TestRestoreListLeavesOutOnlyTheExtensionsEntries(t *testing.T) {
	pattern := extensionEntries(t)
	re := regexp.MustCompile(pattern)
	var lines, want []string
	for _, e := range restoreList {
		if out := re.MatchString(e.line); out != !e.kept {
			t.Errorf("line %q: left out %v, want %v", e.line, out, !e.kept)
		}
		lines = append(lines, e.line)
		if e.kept {
			want = append(want, e.line)
		}
	}
	grep, err := exec.LookPath("grep")
	if err != nil {
		const msg = "no grep to run the filter as the job does"
		if os.Getenv("CI") == "true" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	cmd := exec.Command(grep, "-Ev", pattern)
	cmd.Stdin = strings.NewReader(strings.Join(lines, "\n") + "\n")
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("grep -Ev %q: %v", pattern, err)
	}
	if got := strings.Split(strings.TrimSuffix(string(out), "\n"), "\n"); !slices.Equal(got, want) {
		t.Errorf("grep -Ev kept\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

// TestRestoreLogsInAsTheRestoreRole: the rendered restore script connects
// as pgbroker_restore acting as the owner role, with the filtered list and
// --no-owner, for the instance's own dumps and another's (then --no-acl
// too); no template reads the admin password.
func TestRestoreLogsInAsTheRestoreRole(t *testing.T) {
	client := nomadClient(t)
	for _, source := range []string{"", "ba9876543210"} {
		for _, driver := range drivers {
			t.Run(driver+"/source="+source, func(t *testing.T) {
				f := jobFileNamed(t, "restore")
				job, err := parse(t, client, f.name, f.src, varsOf(f, map[string]any{"driver": driver, "source_instance": source}))
				if err != nil {
					t.Fatalf("parse: %v", err)
				}
				task := job.TaskGroups[0].Tasks[0]
				script := restoreScript(t, task)
				for _, want := range []string{
					"--username=pgbroker_restore", "--role='db_" + instance + "'", "--no-owner",
					`--use-list="$list"`, "--clean --if-exists --single-transaction --exit-on-error",
				} {
					if !strings.Contains(script, want) {
						t.Errorf("restore.sh lacks %s", want)
					}
				}
				if strings.Contains(script, "pgbroker_admin") {
					t.Error("restore.sh names pgbroker_admin")
				}
				if got := strings.Contains(script, "--no-acl"); got != (source != "") {
					t.Errorf("restore.sh with source_instance %q: --no-acl %v, want %v", source, got, source != "")
				}
				for _, tmpl := range task.Templates {
					if strings.Contains(*tmpl.EmbeddedTmpl, "admin_password") {
						t.Errorf("template %s reads admin_password", *tmpl.DestPath)
					}
				}
			})
		}
	}
}

func restoreScript(t *testing.T, task *api.Task) string {
	t.Helper()
	for _, tmpl := range task.Templates {
		if *tmpl.DestPath == "local/restore.sh" {
			return *tmpl.EmbeddedTmpl
		}
	}
	t.Fatal("no template renders local/restore.sh")
	return ""
}
