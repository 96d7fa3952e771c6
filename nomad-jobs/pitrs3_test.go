package nomadjobs_test

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/hashicorp/nomad/api"

	nomadjobs "github.com/pgbroker/pgbroker/nomad-jobs"
)

// s3Vars are the variables the broker passes for a pgBackRest repository in
// S3 (provisioner.PITRS3). No job file declares a variable for a key
// (TestJobFilesDeclareNoSecretVariables), so none can be passed.
func s3Vars(base map[string]any) map[string]any {
	vars := map[string]any{}
	for k, v := range base {
		vars[k] = v
	}
	for k, v := range map[string]any{
		"pitr_repo": "/team-a/pgbackrest", "pitr_s3_endpoint": "s3.example.com", "pitr_s3_port": 9443,
		"pitr_s3_bucket": "pitr-repo", "pitr_s3_region": "eu-west-3",
		"pitr_s3_ca": "-----BEGIN CERTIFICATE-----\nMIIBdzCCAR2gAwIBAgIQ\n-----END CERTIFICATE-----\n",
	} {
		vars[k] = v
	}
	return vars
}

func templates(job *api.Job) map[string]*api.Template {
	out := map[string]*api.Template{}
	for _, tmpl := range job.TaskGroups[0].Tasks[0].Templates {
		out[*tmpl.DestPath] = tmpl
	}
	return out
}

// TestNodesUseAnS3RepositoryWithKeysFromTheirVariable: with pitr_s3_endpoint
// the node's pgbackrest.conf (in secrets/, 0600, owned by postgres) names the
// bucket, endpoint, port, region, path-style requests and the CA file
// rendered from pitr_s3_ca, and takes the keys from the job's own Nomad
// Variable; the start script
// makes no repository directory and empties the instance's own stanza with
// pgbackrest stanza-delete, not rm. Values that would break out of the
// configuration file are refused by the job file.
func TestNodesUseAnS3RepositoryWithKeysFromTheirVariable(t *testing.T) {
	client := nomadClient(t)
	for _, base := range []jobFile{jobFiles("raw_exec")[0], jobFiles("docker")[2]} {
		vars := s3Vars(base.vars)
		vars["pitr_restore_id"], vars["pitr_target"], vars["pitr_source"] = "op-1", "2026-11-23 16:50:00.123456+00", "ba9876543210"
		job := mustParse(t, client, jobFile{name: "nodes", src: base.src, vars: vars})
		tmpls := templates(job)
		conf := tmpls["secrets/pgbackrest.conf"]
		if conf == nil {
			t.Fatalf("no secrets/pgbackrest.conf among %v", tmpls)
		}
		if *conf.Perms != "0600" || *conf.Uid != 101 || *conf.Gid != 104 || *conf.ChangeMode != "noop" {
			t.Errorf("pgbackrest.conf perms %s uid %d gid %d change_mode %s: want 0600, postgres, noop", *conf.Perms, *conf.Uid, *conf.Gid, *conf.ChangeMode)
		}
		body := *conf.EmbeddedTmpl
		for _, want := range []string{
			"repo1-type=s3\n", "repo1-path=/team-a/pgbackrest\n", "repo1-s3-endpoint=s3.example.com\n", "repo1-storage-port=9443\n",
			"repo1-s3-bucket=pitr-repo\n", "repo1-s3-region=eu-west-3\n", "repo1-s3-uri-style=path\n",
			`repo1-storage-ca-file={{ env "NOMAD_TASK_DIR" }}/pitr-s3-ca.pem`,
			`nomadVar (printf "nomad/jobs/%s" (env "NOMAD_JOB_ID"))`,
			"repo1-s3-key={{ .pitr_s3_key.Value }}\n", "repo1-s3-key-secret={{ .pitr_s3_key_secret.Value }}\n",
		} {
			if !strings.Contains(body, want) {
				t.Errorf("pgbackrest.conf lacks %q:\n%s", want, body)
			}
		}
		if ca := tmpls["local/pitr-s3-ca.pem"]; ca == nil || *ca.EmbeddedTmpl != vars["pitr_s3_ca"] {
			t.Errorf("CA file template: %+v", ca)
		}
		if archive := *tmpls["local/pitr.conf"].EmbeddedTmpl; !strings.Contains(archive, `--config={{ env "NOMAD_SECRETS_DIR" }}/pgbackrest.conf`) {
			t.Errorf("archive_command does not read secrets/pgbackrest.conf:\n%s", archive)
		}
		start := *tmpls["local/start.sh"].EmbeddedTmpl
		for _, want := range []string{
			`--stanza='` + instance + `' stop`, `--stanza='` + instance + `' --force stanza-delete`,
			`pgbackrest --config="$NOMAD_SECRETS_DIR/pgbackrest.conf" --stanza='ba9876543210' --pg1-path="$data_dir"`,
		} {
			if !strings.Contains(start, want) {
				t.Errorf("start script lacks %q:\n%s", want, start)
			}
		}
		if strings.Contains(start, "rm -rf --one-file-system -- '/team-a") || strings.Contains(start, "mkdir -p '/team-a") {
			t.Errorf("start script touches a local directory of the S3 repository:\n%s", start)
		}
	}
	for name, bad := range map[string]map[string]any{
		"endpoint with a line break": {"pitr_s3_endpoint": "s3.example.com\nrepo1-type=posix"},
		"endpoint with a scheme":     {"pitr_s3_endpoint": "https://s3.example.com"},
		"bucket":                     {"pitr_s3_bucket": "../other"},
		"region":                     {"pitr_s3_region": "eu west"},
		"CA with a template":         {"pitr_s3_ca": "-----BEGIN CERTIFICATE-----\n{{ with nomadVar \"x\" }}{{ end }}\n"},
	} {
		vars := s3Vars(jobFiles("raw_exec")[0].vars)
		for k, v := range bad {
			vars[k] = v
		}
		if _, err := parse(t, client, "nodes", nomadjobs.Nodes, vars); err == nil {
			t.Errorf("%s accepted: %v", name, bad)
		}
	}
}

// TestBaseBackupUsesAnS3RepositoryWithKeysFromItsVariable: with
// pitr_s3_endpoint the base backup's pgbackrest.conf names the bucket and
// the CA file, the keys reach pgBackRest as PGBACKREST_REPO1_S3_KEY[_SECRET]
// from secrets/pg.env (the job's own Variable), and the docker profile
// mounts no repository directory.
func TestBaseBackupUsesAnS3RepositoryWithKeysFromItsVariable(t *testing.T) {
	client := nomadClient(t)
	for _, driver := range drivers {
		files := jobFiles(driver)
		base := files[len(files)-1]
		job := mustParse(t, client, jobFile{name: base.name, src: base.src, vars: s3Vars(base.vars)})
		tmpls := templates(job)
		conf := *tmpls["local/pgbackrest.conf"].EmbeddedTmpl
		for _, want := range []string{"repo1-type=s3\n", "repo1-path=/team-a/pgbackrest\n", "repo1-s3-bucket=pitr-repo\n",
			"repo1-storage-port=9443\n", "repo1-s3-uri-style=path\n", `repo1-storage-ca-file={{ env "NOMAD_TASK_DIR" }}/pitr-s3-ca.pem`} {
			if !strings.Contains(conf, want) {
				t.Errorf("%s: pgbackrest.conf lacks %q:\n%s", driver, want, conf)
			}
		}
		if strings.Contains(conf, "s3-key") {
			t.Errorf("%s: keys in local/pgbackrest.conf:\n%s", driver, conf)
		}
		env := tmpls["secrets/pg.env"]
		if env == nil || !*env.Envvars || !strings.Contains(*env.EmbeddedTmpl, "PGBACKREST_REPO1_S3_KEY={{ .pitr_s3_key.Value | toJSON }}") ||
			!strings.Contains(*env.EmbeddedTmpl, "PGBACKREST_REPO1_S3_KEY_SECRET={{ .pitr_s3_key_secret.Value | toJSON }}") {
			t.Errorf("%s: secrets/pg.env does not give the S3 keys: %+v", driver, env)
		}
		if tmpls["local/pitr-s3-ca.pem"] == nil {
			t.Errorf("%s: no CA file template", driver)
		}
		if driver == "docker" {
			if volumes := job.TaskGroups[0].Tasks[0].Config["volumes"]; strings.Contains(strings.Join(strings.Fields(toString(volumes)), " "), "/team-a") {
				t.Errorf("docker mounts the S3 repository path: %v", volumes)
			}
		}
	}
}

func toString(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}
