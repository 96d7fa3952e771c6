package nomadjobs_test

import (
	"strings"
	"testing"

	"github.com/hashicorp/nomad/api"
)

// s3DumpVars are a job file's test variables with S3 storage and 8 MiB parts.
func s3DumpVars(t *testing.T, name string) (jobFile, map[string]any) {
	f := jobFileNamed(t, name)
	return f, varsOf(f, map[string]any{
		"s3_endpoint": "https://s3.example.com", "s3_bucket": "dumps", "s3_object": "prod/" + instance + "/b.dump", "s3_part_size_mib": 8,
	})
}

func templateText(t *testing.T, task *api.Task, dest string) string {
	t.Helper()
	for _, tmpl := range task.Templates {
		if *tmpl.DestPath == dest {
			return *tmpl.EmbeddedTmpl
		}
	}
	t.Fatalf("no template renders %s", dest)
	return ""
}

// TestS3DumpAndRestoreStreamThroughRclone: with S3 storage the dump script
// pipes pg_dump into rclone rcat with the part size asked, the restore
// script streams rclone cat into pg_restore, neither touches backup_dir nor
// names a key, the keys reach rclone from the job's own Variable through an
// env template in secrets/, and the dump task's memory holds three parts.
func TestS3DumpAndRestoreStreamThroughRclone(t *testing.T) {
	client := nomadClient(t)
	for _, c := range []struct {
		name, dest string
		want       []string
	}{
		{"dump", "local/dump.sh", []string{"| rclone rcat ", "--s3-chunk-size='8Mi'", "rclone deletefile"}},
		{"restore", "local/restore.sh", []string{`rclone cat "$object" | restore`}},
	} {
		t.Run(c.name, func(t *testing.T) {
			f, vars := s3DumpVars(t, c.name)
			job, err := parse(t, client, f.name, f.src, vars)
			if err != nil {
				t.Fatalf("parse: %v", err)
			}
			task := job.TaskGroups[0].Tasks[0]
			s := templateText(t, task, c.dest)
			for _, want := range c.want {
				if !strings.Contains(s, want) {
					t.Errorf("%s lacks %q", c.dest, want)
				}
			}
			for _, banned := range []string{"curl", vars["backup_dir"].(string), "SECRET_ACCESS_KEY"} {
				if strings.Contains(s, banned) {
					t.Errorf("%s holds %q: with S3 nothing is spooled and no key is in the script", c.dest, banned)
				}
			}
			env := templateText(t, task, "secrets/s3.env")
			if !strings.Contains(env, "RCLONE_CONFIG_DUMPS_SECRET_ACCESS_KEY={{ .s3_secret_access_key.Value | toJSON }}") {
				t.Errorf("secrets/s3.env does not give rclone the key from the Variable:\n%s", env)
			}
			for _, tmpl := range task.Templates {
				if *tmpl.DestPath == "secrets/s3.env" && (tmpl.Envvars == nil || !*tmpl.Envvars) {
					t.Error("secrets/s3.env is not an env template")
				}
			}
			if c.name == "dump" && *task.Resources.MemoryMB != 128+3*8 {
				t.Errorf("dump task memory %d MB, want %d (three 8 MiB parts and pg_dump)", *task.Resources.MemoryMB, 128+3*8)
			}
			if c.name == "restore" && *task.Resources.MemoryMB != 128 {
				t.Errorf("restore task memory %d MB, want 128 (it holds no part)", *task.Resources.MemoryMB)
			}
		})
	}
	f, vars := s3DumpVars(t, "dump")
	vars["s3_part_size_mib"] = 4
	if _, err := parse(t, client, f.name, f.src, vars); err == nil || !strings.Contains(err.Error(), "s3_part_size_mib") {
		t.Errorf("parse with 4 MiB parts: %v, want an error naming s3_part_size_mib", err)
	}
}
