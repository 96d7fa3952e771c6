package nomadjobs_test

import (
	"encoding/json"
	"fmt"
	"maps"
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/nomad/api"

	nomadjobs "github.com/pgbroker/pgbroker/nomad-jobs"
)

// The tests below let a real Nomad server parse and validate the job files,
// as the broker does.

const instance = "0123456789ab"

var drivers = []string{"raw_exec", "docker"}

// nomadClient returns a client for the agent at NOMAD_ADDR. Without one the
// tests fail when CI=true and are skipped elsewhere.
func nomadClient(t *testing.T) *api.Client {
	t.Helper()
	addr := os.Getenv("NOMAD_ADDR")
	if addr == "" {
		const msg = `NOMAD_ADDR is not set: the job file tests need a Nomad agent ` +
			`(scripts/stack.sh up && eval "$(scripts/stack.sh env)")`
		if os.Getenv("CI") == "true" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	client, err := api.NewClient(&api.Config{Address: addr})
	if err != nil {
		t.Fatalf("nomad client for %s: %v", addr, err)
	}
	return client
}

// jobFile is one job file with the variables the broker passes and what the
// parsed job must contain.
type jobFile struct {
	name    string // file name without .nomad.hcl; the job ID is pg-<instance>-<name>
	src     string
	vars    map[string]any
	group   string // the group's name; with %d, one group per index 0..count-1, each of count 1
	count   int
	task    string
	port    int            // static port of "pg"; 0: dynamic; -1: no port
	service string         // "" when the job registers no service
	extra   map[string]int // ports after "pg" by label: static value, 0 dynamic
}

func jobFiles(driver string) []jobFile {
	return []jobFile{
		{
			name: "nodes", src: nomadjobs.Nodes,
			vars: map[string]any{
				"instance": instance, "driver": driver, "datacenters": []string{"dc1"},
				"node_count": 2, "memory_mib": 512, "cpu_mhz": 500, "max_connections": 120, "autovacuum_naptime_s": 300,
				"data_root": "/srv/pgbroker/data", "host_network": "private",
				"shared_preload_libraries": []string{"pg_stat_statements"}, "postgres_uid": 101, "postgres_gid": 104,
			},
			group: "node-%d", count: 2, task: "postgres", port: 0, service: "pg-" + instance + "-node",
		},
		{
			name: "gateways", src: nomadjobs.Gateways,
			vars: map[string]any{
				"instance": instance, "driver": driver, "datacenters": []string{"dc1"},
				"gateway_count": 2, "gateway_port": 31042, "max_connections": 120, "host_network": "private",
			},
			group: "gateway", count: 2, task: "haproxy", port: 31042, service: "pg-" + instance + "-gateway",
			extra: map[string]int{"health": 0},
		},
		{
			name: "nodes", src: nomadjobs.Nodes,
			vars: map[string]any{
				"instance": instance, "driver": driver, "datacenters": []string{"dc1"},
				"node_count": 2, "memory_mib": 512, "cpu_mhz": 500, "max_connections": 120,
				"data_root": "/srv/pgbroker/data", "host_network": "private", "postgres_uid": 101, "postgres_gid": 104,
				"patroni": true, "etcd_hosts": []string{"10.0.0.5:2379", "10.0.0.6:2379"},
			},
			group: "node-%d", count: 2, task: "postgres", port: 0, service: "pg-" + instance + "-node",
			extra: map[string]int{"api": 0},
		},
		{
			name: "gateways", src: nomadjobs.Gateways,
			vars: map[string]any{
				"instance": instance, "driver": driver, "datacenters": []string{"dc1"},
				"gateway_count": 2, "gateway_port": 31042, "max_connections": 120, "host_network": "private",
				"patroni": true, "read_only_port": 31043,
			},
			group: "gateway", count: 2, task: "haproxy", port: 31042, service: "pg-" + instance + "-gateway",
			extra: map[string]int{"ro": 31043, "health": 0},
		},
		{
			name: "cleanup", src: nomadjobs.Cleanup,
			vars: map[string]any{
				"instance": instance, "driver": driver, "data_root": "/srv/pgbroker/data",
			},
			group: "cleanup", count: 1, task: "cleanup", port: -1,
		},
		{
			name: "dump", src: nomadjobs.Backup,
			vars: map[string]any{
				"mode": "dump", "instance": instance, "driver": driver, "backup_dir": "/srv/pgbroker/backups",
				"backup_id": "0b5e4a2c-9d1f-4e8a-8a57-3f6f1c2d9e01", "pg_host": "127.0.0.1", "pg_port": 35001,
			},
			group: "dump", count: 1, task: "dump", port: -1,
		},
		{
			name: "restore", src: nomadjobs.Backup,
			vars: map[string]any{
				"mode": "restore", "instance": instance, "driver": driver, "backup_dir": "/srv/pgbroker/backups",
				"backup_id": "0b5e4a2c-9d1f-4e8a-8a57-3f6f1c2d9e01", "pg_host": "127.0.0.1", "pg_port": 35001,
			},
			group: "restore", count: 1, task: "restore", port: -1,
		},
		{
			name: "dump", src: nomadjobs.Backup,
			vars: map[string]any{
				"mode": "dump", "instance": instance, "driver": driver, "backup_dir": "/srv/pgbroker/backups",
				"backup_id": "0b5e4a2c-9d1f-4e8a-8a57-3f6f1c2d9e01", "pg_host": "127.0.0.1", "pg_port": 35001,
				"s3_endpoint": "https://s3.example.com", "s3_bucket": "dumps", "s3_object": "prod/" + instance + "/0b5e4a2c.dump", "s3_part_size_mib": 8,
			},
			group: "dump", count: 1, task: "dump", port: -1,
		},
		{
			name: "restore", src: nomadjobs.Backup,
			vars: map[string]any{
				"mode": "restore", "instance": instance, "driver": driver, "backup_dir": "/srv/pgbroker/backups",
				"backup_id": "0b5e4a2c-9d1f-4e8a-8a57-3f6f1c2d9e01", "pg_host": "127.0.0.1", "pg_port": 35001,
				"s3_endpoint": "https://s3.example.com", "s3_bucket": "dumps", "s3_object": "prod/" + instance + "/0b5e4a2c.dump",
			},
			group: "restore", count: 1, task: "restore", port: -1,
		},
		// Before basebackup: tests take the base backup job as the last entry.
		{
			name: "upgrade", src: nomadjobs.Upgrade,
			vars: map[string]any{
				"instance": instance, "driver": driver, "data_root": "/srv/pgbroker/data", "node_id": "3f1c2d9e-0b5e-4a2c-9d1f-4e8a8a573f6f",
				"phase": "check", "old_bin_dir": "/usr/lib/postgresql/15/bin", "new_bin_dir": "/opt/postgresql-18.6/bin", "new_major": 18,
			},
			group: "upgrade", count: 1, task: "upgrade", port: -1,
		},
		{
			name: "basebackup", src: nomadjobs.BaseBackup,
			vars: map[string]any{
				"instance": instance, "driver": driver, "data_root": "/srv/pgbroker/data",
				"pitr_repo": "/srv/pgbroker/pgbackrest", "node_index": 1, "pg_port": 35001,
			},
			group: "basebackup", count: 1, task: "basebackup", port: -1,
		},
	}
}

// parse has the server parse src with vars, then names the job as the broker does.
func parse(t *testing.T, client *api.Client, name, src string, vars map[string]any) (*api.Job, error) {
	t.Helper()
	variables, err := json.Marshal(vars)
	if err != nil {
		t.Fatalf("encode variables: %v", err)
	}
	job, err := client.Jobs().ParseHCLOpts(&api.JobsParseRequest{
		JobHCL:       src,
		Variables:    string(variables),
		Canonicalize: true,
	})
	if err != nil {
		return nil, err
	}
	id := fmt.Sprintf("pg-%s-%s", vars["instance"], name)
	job.ID, job.Name = &id, &id
	return job, nil
}

func mustParse(t *testing.T, client *api.Client, f jobFile) *api.Job {
	t.Helper()
	job, err := parse(t, client, f.name, f.src, f.vars)
	if err != nil {
		t.Fatalf("parse %s.nomad.hcl: %v", f.name, err)
	}
	return job
}

// TestJobFilesParseIntoTheirGroups: one group per file, except the node job:
// one group node-<index> per node (the broker replaces them in its order).
func TestJobFilesParseIntoTheirGroups(t *testing.T) {
	client := nomadClient(t)
	for _, driver := range drivers {
		for _, f := range jobFiles(driver) {
			t.Run(f.name+"/"+driver, func(t *testing.T) {
				job := mustParse(t, client, f)
				names, count := []string{f.group}, f.count
				if strings.Contains(f.group, "%d") {
					names, count = nil, 1
					for i := 0; i < f.count; i++ {
						names = append(names, fmt.Sprintf(f.group, i))
					}
				}
				if len(job.TaskGroups) != len(names) {
					t.Fatalf("got %d task groups, want %d", len(job.TaskGroups), len(names))
				}
				for i, group := range job.TaskGroups {
					if *group.Name != names[i] || (group.Count != nil && *group.Count != count) || (group.Count == nil && count != 1) {
						t.Errorf("group %s count %v, want %s count %d", *group.Name, group.Count, names[i], count)
					}
					if len(group.Tasks) != 1 || group.Tasks[0].Name != f.task || group.Tasks[0].Driver != driver {
						t.Fatalf("tasks %+v, want one %s task %q", group.Tasks, driver, f.task)
					}
					checkPort(t, group, f)
					checkService(t, group, f)
				}
			})
		}
	}
}

func checkPort(t *testing.T, group *api.TaskGroup, f jobFile) {
	t.Helper()
	var ports []api.Port
	for _, network := range group.Networks {
		ports = append(ports, network.ReservedPorts...)
		ports = append(ports, network.DynamicPorts...)
	}
	if f.port < 0 {
		if len(ports) != 0 {
			t.Errorf("ports %+v, want none", ports)
		}
		return
	}
	if len(ports) == 0 || ports[0].Label != "pg" || ports[0].Value != f.port || ports[0].HostNetwork != "private" {
		t.Errorf("ports %+v, want port pg first, value %d, host network private", ports, f.port)
	}
	for _, p := range ports[1:] {
		want, ok := f.extra[p.Label]
		if !ok || p.Value != want || p.HostNetwork != "private" {
			t.Errorf("extra port %+v, want only %v on host network private", p, f.extra)
		}
	}
	if len(ports) != 1+len(f.extra) {
		t.Errorf("ports %+v, want pg and %v", ports, f.extra)
	}
}

func checkService(t *testing.T, group *api.TaskGroup, f jobFile) {
	t.Helper()
	if f.service == "" {
		if len(group.Services) != 0 {
			t.Errorf("services %+v, want none", group.Services)
		}
		return
	}
	if len(group.Services) != 1 {
		t.Fatalf("got %d services, want 1", len(group.Services))
	}
	service := group.Services[0]
	if service.Name != f.service || service.Provider != "nomad" || service.PortLabel != "pg" {
		t.Errorf("service %s provider %s port %s, want %s provider nomad port pg",
			service.Name, service.Provider, service.PortLabel, f.service)
	}
	checkChecks(t, group, service, f.vars["patroni"] == true)
}

// checkChecks: no check opens a PostgreSQL session or runs every second on
// an idle instance (issue 18). Nomad's TCP check leaks its connection
// (checkTCP never closes it), so a TCP check on a node kept a backend
// waiting out authentication_timeout per check; an HTTP check a second on
// every gateway was most of an idle instance's CPU. Patroni nodes are
// checked on Patroni's GET /health; single nodes and gateways not at all,
// their deployments healthy once the task has run (HAProxy exits when it
// cannot bind).
func checkChecks(t *testing.T, group *api.TaskGroup, service *api.Service, patroni bool) {
	t.Helper()
	node := strings.HasPrefix(*group.Name, "node-")
	if !node || !patroni {
		if len(service.Checks) != 0 {
			t.Errorf("group %s: checks %+v, want none", *group.Name, service.Checks)
		}
		if group.Update == nil || group.Update.HealthCheck == nil || *group.Update.HealthCheck != "task_states" {
			t.Errorf("group %s: update %+v, want health_check task_states", *group.Name, group.Update)
		} else if *group.Name == "gateway" && (group.Update.MinHealthyTime == nil || *group.Update.MinHealthyTime < time.Second) {
			t.Errorf("gateway min_healthy_time %v, want at least 1s (HAProxy must have bound its frontends)", group.Update.MinHealthyTime)
		}
		return
	}
	if len(service.Checks) != 1 {
		t.Fatalf("checks %+v, want one", service.Checks)
	}
	if c := service.Checks[0]; c.Type != "http" || c.PortLabel != "api" || c.Path != "/health" {
		t.Errorf("Patroni node check %+v, want http on port api, path /health", c)
	}
}

// TestGatewayChecksForkNoBackendEverySecond: a gateway in front of one
// node checks it every 30 s while it is up (each check forks a PostgreSQL
// backend) and on a client's failed connection; in front of Patroni nodes it
// checks Patroni's REST API, never PostgreSQL.
func TestGatewayChecksForkNoBackendEverySecond(t *testing.T) {
	client := nomadClient(t)
	for _, f := range jobFiles("raw_exec") {
		if f.name != "gateways" {
			continue
		}
		job := mustParse(t, client, f)
		cfg := ""
		for _, tmpl := range job.TaskGroups[0].Tasks[0].Templates {
			if tmpl.EmbeddedTmpl != nil && strings.Contains(*tmpl.EmbeddedTmpl, "backend nodes") {
				cfg = *tmpl.EmbeddedTmpl
			}
		}
		if cfg == "" {
			t.Fatal("no HAProxy configuration template in the gateways job")
		}
		var servers []string
		for _, line := range strings.Split(cfg, "\n") {
			if strings.HasPrefix(strings.TrimSpace(line), "server ") {
				servers = append(servers, strings.TrimSpace(line))
			}
		}
		patroni := f.vars["patroni"] == true
		for _, line := range servers {
			if !strings.Contains(line, "}} check") {
				t.Errorf("patroni=%v: server line %q has no check", patroni, line)
			}
			if patroni != strings.Contains(line, `port {{ . | replaceAll "patroni=" "" }}`) {
				t.Errorf("patroni=%v: server line %q; want the check on the Patroni port exactly when patroni", patroni, line)
			}
		}
		if !patroni && !strings.Contains(cfg, "default-server inter 30s ") {
			t.Errorf("single-node gateway: want checks every 30 s while the node is up, got:\n%s", cfg)
		}
		if len(servers) == 0 {
			t.Errorf("patroni=%v: no server line in the HAProxy configuration", patroni)
		}
	}
}

func TestJobFilesValidateForBothDrivers(t *testing.T) {
	client := nomadClient(t)
	for _, driver := range drivers {
		for _, f := range jobFiles(driver) {
			t.Run(f.name+"/"+driver, func(t *testing.T) {
				resp, _, err := client.Jobs().Validate(mustParse(t, client, f), nil)
				if err != nil {
					t.Fatalf("validate: %v", err)
				}
				if resp.Error != "" || len(resp.ValidationErrors) > 0 {
					t.Errorf("validation failed: %s %v", resp.Error, resp.ValidationErrors)
				}
				if resp.Warnings != "" {
					t.Logf("warnings: %s", resp.Warnings)
				}
			})
		}
	}
}

// secretLooking matches names and values that should never be in a job spec.
var secretLooking = regexp.MustCompile(`(?i)password|secret|token|credential`)

// TestJobFilesCarryNoSecrets checks that no env, meta or driver config of a
// parsed job looks like a secret, and that the node passwords come only from
// the job's Nomad Variable, rendered into secrets/. That no secret can be
// passed in as a variable is TestJobFilesDeclareNoSecretVariables.
func TestJobFilesCarryNoSecrets(t *testing.T) {
	client := nomadClient(t)
	for _, driver := range drivers {
		for _, f := range jobFiles(driver) {
			t.Run(f.name+"/"+driver, func(t *testing.T) {
				job, err := parse(t, client, f.name, f.src, f.vars)
				if err != nil {
					t.Fatalf("parse: %v", err)
				}
				checkNoSecretLooking(t, "job meta", job.Meta)
				secretTemplates := 0
				for _, group := range job.TaskGroups {
					checkNoSecretLooking(t, "group meta", group.Meta)
					for _, task := range group.Tasks {
						checkNoSecretLooking(t, "task meta", task.Meta)
						checkNoSecretLooking(t, "task env", task.Env)
						checkNoSecretLooking(t, "driver config", task.Config)
						for _, tmpl := range task.Templates {
							if checkSecretTemplate(t, tmpl) {
								secretTemplates++
							}
						}
					}
				}
				if (f.name == "nodes" || f.name == "dump" || f.name == "restore" || f.name == "basebackup") && secretTemplates == 0 {
					t.Errorf("no template reads the passwords from the job's Nomad Variable")
				}
			})
		}
	}
}

func checkNoSecretLooking[V any](t *testing.T, where string, m map[string]V) {
	t.Helper()
	for k, v := range m {
		if secretLooking.MatchString(k) || secretLooking.MatchString(fmt.Sprint(v)) {
			t.Errorf("%s %q looks like a secret", where, k)
		}
	}
}

// checkSecretTemplate: a template reading a Nomad Variable must read the
// job's own, nomad/jobs/<job ID>, and render into secrets/ for its owner only.
// It reports whether tmpl reads one.
func checkSecretTemplate(t *testing.T, tmpl *api.Template) bool {
	t.Helper()
	body := *tmpl.EmbeddedTmpl
	if !strings.Contains(body, "nomadVar") {
		return false
	}
	if !strings.Contains(body, `nomadVar (printf "nomad/jobs/%s" (env "NOMAD_JOB_ID"))`) {
		t.Errorf("template %s reads a Nomad Variable other than nomad/jobs/<its job ID>", *tmpl.DestPath)
	}
	if !strings.HasPrefix(*tmpl.DestPath, "secrets/") || *tmpl.Perms != "0600" {
		t.Errorf("template %s with perms %s: want secrets/..., 0600", *tmpl.DestPath, *tmpl.Perms)
	}
	return true
}

func TestNodeSettingsFollowThePlan(t *testing.T) {
	client := nomadClient(t)
	nodes := jobFiles("raw_exec")[0]
	job := mustParse(t, client, nodes)
	task := job.TaskGroups[0].Tasks[0]
	if *task.Resources.MemoryMB != 512 || *task.Resources.CPU != 500 {
		t.Errorf("resources memory %d MiB cpu %d MHz, want 512 and 500", *task.Resources.MemoryMB, *task.Resources.CPU)
	}
	var conf string
	for _, tmpl := range task.Templates {
		if *tmpl.DestPath == "local/postgresql.conf" {
			conf = *tmpl.EmbeddedTmpl
		}
	}
	for _, want := range []string{
		"shared_buffers = 128MB\n",
		"effective_cache_size = 384MB\n",
		"max_connections = 120\n",
		"autovacuum_naptime = 300s\n",
		"password_encryption = 'scram-sha-256'\n",
		"wal_level = replica\n",
	} {
		if !strings.Contains(conf, want) {
			t.Errorf("postgresql.conf lacks %q:\n%s", want, conf)
		}
	}
	if task.KillSignal != "SIGINT" || task.User != "postgres" {
		t.Errorf("kill signal %s user %q, want SIGINT and postgres", task.KillSignal, task.User)
	}
}

func TestNodeIDPinsPlacement(t *testing.T) {
	client := nomadClient(t)
	for _, f := range jobFiles("raw_exec") {
		if f.name == "gateways" {
			continue
		}
		t.Run(f.name, func(t *testing.T) {
			if f.name == "upgrade" { // node_id is required: the upgrade runs where the data is
				want := []api.Constraint{{LTarget: "${node.unique.id}", RTarget: f.vars["node_id"].(string), Operand: "="}}
				if got := constraints(mustParse(t, client, f)); !slices.Equal(got, want) {
					t.Errorf("constraints %+v, want %+v", got, want)
				}
				delete(f.vars, "node_id")
				if _, err := parse(t, client, f.name, f.src, f.vars); err == nil {
					t.Error("parsed without node_id, want an error")
				}
				return
			}
			// The node job keeps its nodes on distinct clients, whatever node_id.
			var base []api.Constraint
			if f.name == "nodes" {
				base = append(base, api.Constraint{RTarget: "true", Operand: "distinct_hosts"})
			}
			if got := constraints(mustParse(t, client, f)); !slices.Equal(got, base) {
				t.Errorf("without node_id: constraints %+v, want %+v", got, base)
			}
			f.vars["node_id"] = "3f9c2d4e-0000-4000-8000-000000000001"
			want := append([]api.Constraint{{LTarget: "${node.unique.id}", RTarget: "3f9c2d4e-0000-4000-8000-000000000001", Operand: "="}}, base...)
			if got := constraints(mustParse(t, client, f)); !slices.Equal(got, want) {
				t.Errorf("with node_id: constraints %+v, want %+v", got, want)
			}
		})
	}
}

// TestNodeClientsPinEachNodeGroupToItsOwnClient: node_clients puts one
// node_id constraint on each node's task group, its own client (an empty
// entry none), and leaves the job's own constraints as they are.
func TestNodeClientsPinEachNodeGroupToItsOwnClient(t *testing.T) {
	client := nomadClient(t)
	f := jobFiles("raw_exec")[2] // the Patroni node job
	const a, b = "3f9c2d4e-0000-4000-8000-00000000000a", "3f9c2d4e-0000-4000-8000-00000000000b"
	for _, c := range []struct {
		clients []string
		want    map[string]string // group → client its constraint names; absent: none
	}{
		{nil, map[string]string{}},
		{[]string{a, b}, map[string]string{"node-0": a, "node-1": b}},
		{[]string{b, a}, map[string]string{"node-0": b, "node-1": a}},
		{[]string{a, ""}, map[string]string{"node-0": a}},
	} {
		delete(f.vars, "node_clients") // unset, as the broker leaves it without clients
		if c.clients != nil {
			f.vars["node_clients"] = c.clients
		}
		job := mustParse(t, client, f)
		if got := constraints(job); len(got) != 1 || got[0].Operand != "distinct_hosts" {
			t.Errorf("node_clients %q: job constraints %+v, want distinct_hosts only", c.clients, got)
		}
		got := map[string]string{}
		for _, g := range job.TaskGroups {
			for _, con := range g.Constraints {
				if con.LTarget != "${node.unique.id}" || con.Operand != "=" {
					t.Errorf("node_clients %q: group %s has constraint %+v", c.clients, *g.Name, *con)
				}
				if _, twice := got[*g.Name]; twice {
					t.Errorf("node_clients %q: group %s pinned twice", c.clients, *g.Name)
				}
				got[*g.Name] = con.RTarget
			}
		}
		if !maps.Equal(got, c.want) {
			t.Errorf("node_clients %q: groups pinned %v, want %v", c.clients, got, c.want)
		}
	}
}

func constraints(job *api.Job) []api.Constraint {
	out := make([]api.Constraint, len(job.Constraints))
	for i, c := range job.Constraints {
		out[i] = *c
	}
	return out
}

func TestUnsafeInstanceOrDataRootIsRejected(t *testing.T) {
	client := nomadClient(t)
	cleanup := jobFileNamed(t, "cleanup")
	cases := []struct{ variable, value string }{
		{"instance", ""},
		{"instance", "../etc"},
		{"instance", "a/b"},
		{"instance", "Upper"},
		{"data_root", "relative/dir"},
		{"data_root", "/"},
		{"data_root", "/srv/../etc"},
		{"data_root", "/srv/./x"},
		{"driver", "exec"},
		{"node_groups", "../node-1"},
		{"node_groups", "node-1/.."},
		{"node_groups", ""},
	}
	for _, c := range cases {
		t.Run(c.variable+"="+c.value, func(t *testing.T) {
			vars := map[string]any{}
			for k, v := range cleanup.vars {
				vars[k] = v
			}
			vars[c.variable] = c.value
			if c.variable == "node_groups" {
				vars[c.variable] = []string{c.value}
			}
			if _, err := parse(t, client, cleanup.name, cleanup.src, vars); err == nil {
				t.Errorf("parse accepted %s = %q", c.variable, c.value)
			}
		})
	}
}

// TestCleanupOfNodeGroupsKeepsTheRest: with node_groups the cleanup job
// deletes those nodes' data directories only (a Business instance's former
// standbys); without, the whole instance directory and its stanza.
func TestCleanupOfNodeGroupsKeepsTheRest(t *testing.T) {
	client := nomadClient(t)
	cleanup := jobFileNamed(t, "cleanup")
	args := func(extra map[string]any) []string {
		vars := map[string]any{"pitr_repo": "/srv/r"}
		for k, v := range cleanup.vars {
			vars[k] = v
		}
		for k, v := range extra {
			vars[k] = v
		}
		job, err := parse(t, client, cleanup.name, cleanup.src, vars)
		if err != nil {
			t.Fatal(err)
		}
		var out []string
		for _, a := range job.TaskGroups[0].Tasks[0].Config["args"].([]any) {
			out = append(out, a.(string))
		}
		return out
	}
	dir := "/srv/pgbroker/data/" + instance
	want := []string{"-rf", "--one-file-system", "--", dir, "/srv/r/archive/" + instance, "/srv/r/backup/" + instance}
	if got := args(nil); !slices.Equal(got, want) {
		t.Errorf("whole instance: args %q, want %q", got, want)
	}
	want = []string{"-rf", "--one-file-system", "--", dir + "/node-1", dir + "/node-2"}
	if got := args(map[string]any{"node_groups": []string{"node-1", "node-2"}}); !slices.Equal(got, want) {
		t.Errorf("node groups: args %q, want %q", got, want)
	}
}

// jobFileNamed returns the first raw_exec job file called name.
func jobFileNamed(t *testing.T, name string) jobFile {
	t.Helper()
	for _, f := range jobFiles("raw_exec") {
		if f.name == name {
			return f
		}
	}
	t.Fatalf("no job file %s", name)
	return jobFile{}
}

// declaredVariable matches an HCL2 variable block's name at a line's start.
var declaredVariable = regexp.MustCompile(`(?m)^variable\s+"([^"]+)"`)

// secretVariables returns the variables src declares whose name looks like
// a secret's (secretLooking).
func secretVariables(src string) (declared, secret []string) {
	for _, m := range declaredVariable.FindAllStringSubmatch(src, -1) {
		declared = append(declared, m[1])
		if secretLooking.MatchString(m[1]) {
			secret = append(secret, m[1])
		}
	}
	return declared, secret
}

// TestJobFilesDeclareNoSecretVariables: a variable's value ends up in the
// job spec, which any Nomad user with read access sees, so no job file may
// declare a variable for a password, key or token; secrets come from the
// job's Nomad Variable only. (Nomad drops variables a file does not declare,
// so passing a canary password along, as this test once did, could not fail.)
// A planted job file with such a variable proves the check can fail.
func TestJobFilesDeclareNoSecretVariables(t *testing.T) {
	files := map[string]string{"nodes": nomadjobs.Nodes, "gateways": nomadjobs.Gateways, "cleanup": nomadjobs.Cleanup,
		"backup": nomadjobs.Backup, "basebackup": nomadjobs.BaseBackup}
	for name, src := range files {
		declared, secret := secretVariables(src)
		if len(declared) < 3 {
			t.Errorf("%s: found %d variable blocks (%v): the pattern no longer reads the file", name, len(declared), declared)
		}
		if len(secret) > 0 {
			t.Errorf("%s declares secret-looking variables %v: read secrets from the job's Nomad Variable in a template", name, secret)
		}
	}
	planted := "variable \"instance\" {\n  type = string\n}\n\nvariable \"pitr_s3_key_secret\" {\n  type = string\n}\n"
	if _, secret := secretVariables(planted); len(secret) != 1 || secret[0] != "pitr_s3_key_secret" {
		t.Fatalf("a planted secret variable is not found: %v", secret)
	}
}
