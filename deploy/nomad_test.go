package deploy_test

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/hashicorp/nomad/api"

	"github.com/pgbroker/pgbroker/config"
	"github.com/pgbroker/pgbroker/deploy"
)

// The tests below run the operator's own commands, `nomad job validate` and
// `nomad job plan`, against the local stack's Nomad, and let its server parse
// the job file to inspect what reaches the job spec.

// secretLooking matches names that must never carry a literal value.
var secretLooking = regexp.MustCompile(`(?i)password|secret|token|credential|database_url|access_key`)

const jobFile = "pgbroker.nomad.hcl"

// jobVars are the -var flags an operator passes: only the required one.
var jobVars = []string{"-var", "data_root=/srv/pgbroker/data"}

// needNomad returns the address of the stack's Nomad agent and the nomad
// CLI. Without them the tests fail when CI=true and are skipped elsewhere.
func needNomad(t *testing.T) (addr, cli string) {
	t.Helper()
	missing := func(msg string) {
		msg += ` (make deps; scripts/with-stack.sh go test ./deploy/)`
		if os.Getenv("CI") == "true" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	addr = os.Getenv("NOMAD_ADDR")
	if addr == "" {
		missing("NOMAD_ADDR is not set: the job file tests need the stack's Nomad agent")
	}
	cli, err := exec.LookPath("nomad")
	if err != nil {
		if cli, err = filepath.Abs("../.stack/bin/nomad"); err == nil {
			_, err = os.Stat(cli)
		}
	}
	if err != nil {
		missing("no nomad CLI on PATH or at .stack/bin/nomad")
	}
	return addr, cli
}

// nomadCLI runs the nomad CLI in this folder against addr and returns its
// exit code and combined output.
func nomadCLI(t *testing.T, addr, cli string, args ...string) (int, string) {
	t.Helper()
	cmd := exec.Command(cli, args...)
	cmd.Env = append(os.Environ(), "NOMAD_ADDR="+addr)
	out, err := cmd.CombinedOutput()
	if exit, ok := err.(*exec.ExitError); ok {
		return exit.ExitCode(), string(out)
	}
	if err != nil {
		t.Fatalf("run nomad %s: %v", strings.Join(args, " "), err)
	}
	return 0, string(out)
}

// TestBrokerJobValidatesAndPlansOnNomad: `nomad job validate` accepts the
// file with only data_root set and refuses it without; `nomad job plan`
// against the stack's Nomad would place the broker (exit code 1: a job to
// create, every task allocated).
func TestBrokerJobValidatesAndPlansOnNomad(t *testing.T) {
	addr, cli := needNomad(t)
	code, out := nomadCLI(t, addr, cli, append(append([]string{"job", "validate"}, jobVars...), jobFile)...)
	if code != 0 || !strings.Contains(out, "Job validation successful") {
		t.Fatalf("nomad job validate: exit %d\n%s", code, out)
	}
	if code, out := nomadCLI(t, addr, cli, "job", "validate", jobFile); code == 0 || !strings.Contains(out, "data_root") {
		t.Errorf("nomad job validate without data_root: exit %d, want a failure naming data_root\n%s", code, out)
	}
	code, out = nomadCLI(t, addr, cli, append(append([]string{"job", "plan"}, jobVars...), jobFile)...)
	if code != 1 || !strings.Contains(out, `+ Job: "pgbroker"`) || !strings.Contains(out, "All tasks successfully allocated") {
		t.Fatalf("nomad job plan: exit %d; want exit 1 (a job to create), `+ Job: \"pgbroker\"` and \"All tasks successfully allocated\"\n%s", code, out)
	}
}

// TestBrokerJobTakesSecretsOnlyFromItsVariable: the parsed job sets only
// settings the broker reads, none of them a secret; the secrets come from
// the job's own Nomad Variable through a template rendered into secrets/,
// which lets through every secret setting and nothing but settings.
func TestBrokerJobTakesSecretsOnlyFromItsVariable(t *testing.T) {
	addr, _ := needNomad(t)
	client, err := api.NewClient(&api.Config{Address: addr})
	if err != nil {
		t.Fatal(err)
	}
	job, err := client.Jobs().ParseHCLOpts(&api.JobsParseRequest{
		JobHCL: deploy.NomadJob, Variables: `data_root = "/srv/pgbroker/data"`, Canonicalize: true,
	})
	if err != nil {
		t.Fatalf("parse %s: %v", jobFile, err)
	}
	if len(job.TaskGroups) != 1 || len(job.TaskGroups[0].Tasks) != 1 {
		t.Fatalf("want one group with one task, got %d groups", len(job.TaskGroups))
	}
	task := job.TaskGroups[0].Tasks[0]
	if task.Driver != "raw_exec" || task.User == "" || task.User == "root" || task.User == "postgres" {
		t.Errorf("task driver %s user %q, want raw_exec as an unprivileged user other than postgres (which runs every instance)", task.Driver, task.User)
	}
	settings := config.Variables()
	for key, value := range task.Env {
		if !slices.Contains(settings, key) {
			t.Errorf("env %s is not a setting of the broker (config.Variables)", key)
		}
		if secretLooking.MatchString(key) {
			t.Errorf("env %s=%q in the job spec: secrets belong in the Variable", key, value)
		}
	}
	if task.Env["PGBROKER_LISTEN"] != "${NOMAD_ADDR_http}" {
		t.Errorf("PGBROKER_LISTEN %q, want the address of the job's http port", task.Env["PGBROKER_LISTEN"])
	}
	encoded, _ := json.Marshal(job)
	if strings.Contains(strings.ToLower(string(encoded)), "change-me") {
		t.Error("an example secret reached the job spec")
	}
	if len(task.Templates) != 1 {
		t.Fatalf("%d templates, want the one rendering the Variable", len(task.Templates))
	}
	tmpl := task.Templates[0]
	if !*tmpl.Envvars || !strings.HasPrefix(*tmpl.DestPath, "secrets/") || *tmpl.Perms != "0600" ||
		!strings.Contains(*tmpl.EmbeddedTmpl, `nomadVar (printf "nomad/jobs/%s" (env "NOMAD_JOB_ID"))`) {
		t.Fatalf("template %s (env %v, perms %s) does not render the job's own Variable as environment into secrets/:\n%s",
			*tmpl.DestPath, *tmpl.Envvars, *tmpl.Perms, *tmpl.EmbeddedTmpl)
	}
	checkVariableFilter(t, *tmpl.EmbeddedTmpl, settings)
}

// checkVariableFilter compiles the template's regexMatch pattern (Go's
// regexp, as consul-template's) and checks it admits each secret setting
// and refuses what would take over the process.
func checkVariableFilter(t *testing.T, tmpl string, settings []string) {
	t.Helper()
	m := regexp.MustCompile(`regexMatch "([^"]+)"`).FindStringSubmatch(tmpl)
	if m == nil {
		t.Fatal("the template passes every item of the Variable: want a regexMatch on the setting names")
	}
	filter := regexp.MustCompile(m[1])
	for _, name := range append(slices.Clone(settings), "DATABASE_URL", "NOMAD_TOKEN") {
		if secretLooking.MatchString(name) && strings.HasPrefix(name, "PGBROKER_") && !filter.MatchString(name) {
			t.Errorf("the Variable cannot set %s", name)
		}
	}
	for _, name := range []string{"LD_PRELOAD", "PATH", "PGBROKER_X\nLD_PRELOAD", "HOME", "pgbroker_password"} {
		if filter.MatchString(name) {
			t.Errorf("the Variable can set %q", name)
		}
	}
}
