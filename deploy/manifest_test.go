package deploy_test

import (
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"testing"

	"sigs.k8s.io/yaml"

	"github.com/pgbroker/pgbroker/config"
)

// manifest is the part of cf push's manifest schema manifest.yml uses;
// UnmarshalStrict refuses any other key, so a typo fails the test.
type manifest struct {
	Applications []struct {
		Name                    string            `json:"name"`
		Memory                  string            `json:"memory"`
		Instances               int               `json:"instances"`
		Buildpacks              []string          `json:"buildpacks"`
		Command                 string            `json:"command"`
		HealthCheckType         string            `json:"health-check-type"`
		HealthCheckHTTPEndpoint string            `json:"health-check-http-endpoint"`
		Env                     map[string]string `json:"env"`
	} `json:"applications"`
}

// buildpackVariables are read by the Go buildpack, not by the broker.
var buildpackVariables = []string{"GO_INSTALL_PACKAGE_SPEC"}

// cfVariable is a whole value cf push interpolates from a vars file.
var cfVariable = regexp.MustCompile(`^\(\(([a-z0-9_]+)\)\)$`)

func readManifest(t *testing.T) manifest {
	t.Helper()
	raw, err := os.ReadFile("../manifest.yml")
	if err != nil {
		t.Fatal(err)
	}
	var m manifest
	if err := yaml.UnmarshalStrict(raw, &m); err != nil {
		t.Fatalf("manifest.yml: %v", err)
	}
	if len(m.Applications) != 1 {
		t.Fatalf("manifest.yml has %d applications, want 1", len(m.Applications))
	}
	return m
}

// TestManifestSetsOnlyRealSettingsAndNoSecrets: every env key of
// manifest.yml is a variable the broker reads (or the buildpack's), secrets
// are ((variables)) filled at push time, and PGBROKER_LISTEN is unset so the
// broker listens on Cloud Foundry's $PORT.
func TestManifestSetsOnlyRealSettingsAndNoSecrets(t *testing.T) {
	app := readManifest(t).Applications[0]
	settings := config.Variables()
	for key, value := range app.Env {
		if !slices.Contains(settings, key) && !slices.Contains(buildpackVariables, key) {
			t.Errorf("env %s is not a setting of the broker (config.Variables)", key)
		}
		if secretLooking.MatchString(key) && !cfVariable.MatchString(value) {
			t.Errorf("env %s holds a literal value; a secret must be a ((variable))", key)
		}
	}
	for _, key := range []string{"PGBROKER_LISTEN", "PORT"} {
		if _, ok := app.Env[key]; ok {
			t.Errorf("manifest sets %s: the broker must listen on the $PORT Cloud Foundry assigns", key)
		}
	}
	spec := app.Env["GO_INSTALL_PACKAGE_SPEC"]
	if app.Command != filepath.Base(spec) {
		t.Errorf("command %q does not run the binary the buildpack builds from %q", app.Command, spec)
	}
	if _, err := os.Stat(filepath.Join("..", spec, "main.go")); err != nil {
		t.Errorf("GO_INSTALL_PACKAGE_SPEC %q: %v", spec, err)
	}
	if app.HealthCheckType != "http" || app.HealthCheckHTTPEndpoint != "/healthz" {
		t.Errorf("health check %s %s, want http /healthz (httpapi serves it without credentials)", app.HealthCheckType, app.HealthCheckHTTPEndpoint)
	}
}

// TestManifestWithTheExampleVarsLoadsAsTheTestedProfile: with the example
// vars file filled in and the PORT Cloud Foundry sets, the manifest's
// environment is a configuration the broker accepts, listening on $PORT with
// dumps in S3, and its job profile is one the acceptance suite runs.
func TestManifestWithTheExampleVarsLoadsAsTheTestedProfile(t *testing.T) {
	app := readManifest(t).Applications[0]
	raw, err := os.ReadFile("cf-vars.example.yml")
	if err != nil {
		t.Fatal(err)
	}
	var vars map[string]string
	if err := yaml.UnmarshalStrict(raw, &vars); err != nil {
		t.Fatalf("cf-vars.example.yml: %v", err)
	}
	used := map[string]bool{}
	clearEnv(t)
	for key, value := range app.Env {
		if m := cfVariable.FindStringSubmatch(value); m != nil {
			v, ok := vars[m[1]]
			if !ok {
				t.Errorf("((%s)) of %s has no value in cf-vars.example.yml", m[1], key)
			}
			used[m[1]], value = true, v
		}
		t.Setenv(key, value)
	}
	for name := range vars {
		if !used[name] {
			t.Errorf("cf-vars.example.yml sets %s, which manifest.yml does not use", name)
		}
	}
	t.Setenv("PORT", "8080")
	c, err := config.Load()
	if err != nil {
		t.Fatalf("the broker refuses the manifest's environment: %v", err)
	}
	if c.Listen != ":8080" {
		t.Errorf("listens on %q, want :8080 ($PORT)", c.Listen)
	}
	if c.SecretsKey == "" && c.SecretsKeyFile == "" {
		t.Error("no PGBROKER_SECRETS_KEY: the broker refuses to start without it")
	}
	if c.BackupS3Endpoint == "" {
		t.Error("dumps on the app's own disk: the Nomad clients cannot write there; want S3 storage")
	}
	if tested := testedDrivers(t); !slices.Contains(tested, c.NomadDriver) {
		t.Errorf("profile %s; the acceptance suite runs %v", c.NomadDriver, tested)
	}
}

// testedDrivers returns the job profiles the acceptance suite runs the
// broker with: the default of config.Load, and any PGBROKER_NOMAD_DRIVER the
// suite or the stack scripts set.
func testedDrivers(t *testing.T) []string {
	t.Helper()
	clearEnv(t)
	for key, value := range map[string]string{"PGBROKER_USERNAME": "u", "PGBROKER_PASSWORD": "p",
		"DATABASE_URL": "postgres://x@127.0.0.1/x", "PGBROKER_DATA_ROOT": "/srv/x"} {
		t.Setenv(key, value)
	}
	c, err := config.Load()
	if err != nil {
		t.Fatal(err)
	}
	drivers := []string{c.NomadDriver}
	set := regexp.MustCompile(`PGBROKER_NOMAD_DRIVER=["']?(\w+)`)
	files, _ := filepath.Glob("../acceptance/*.go")
	scripts, _ := filepath.Glob("../scripts/*.sh")
	for _, f := range append(files, scripts...) {
		src, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range set.FindAllStringSubmatch(string(src), -1) {
			drivers = append(drivers, m[1])
		}
	}
	return drivers
}

// clearEnv unsets every variable the broker reads for the rest of the test,
// so the machine's environment (the stack's DATABASE_URL, NOMAD_ADDR...)
// does not leak into config.Load.
func clearEnv(t *testing.T) {
	t.Helper()
	for _, name := range config.Variables() {
		if _, ok := os.LookupEnv(name); ok {
			t.Setenv(name, "")
			os.Unsetenv(name)
		}
	}
}
