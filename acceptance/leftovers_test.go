package acceptance

import (
	"bytes"
	"encoding/base64"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"time"

	"github.com/hashicorp/nomad/api"
)

// stackView is what of the local stack the suite could leave behind: live
// pg-* Nomad jobs, their running allocations, instance Variables, instance
// data directories, Patroni keys in etcd, and processes started from a data
// directory. TestMain takes one before the tests and compares at the end
// (issue 18: "a leftover fails the run and names it"); what was there
// before (a `make run` sharing the stack) is not the suite's.
type stackView map[string]bool

var instanceDir = regexp.MustCompile(`^[0-9a-f]{12}$`)

// viewStack lists the suite-relevant state of the stack, one line per item
// ("job pg-…", "allocation …", "variable …", "directory …", "etcd …",
// "process …"). Errors: a part that cannot be read.
func viewStack() (stackView, error) {
	v := stackView{}
	c, err := sharedNomad()
	if err != nil {
		return nil, err
	}
	jobs, _, err := c.Jobs().List(&api.QueryOptions{Prefix: "pg-"})
	if err != nil {
		return nil, fmt.Errorf("list jobs: %w", err)
	}
	for _, j := range jobs {
		v["job "+j.ID+" ("+j.Status+")"] = true
	}
	allocs, _, err := c.Allocations().List(nil)
	if err != nil {
		return nil, fmt.Errorf("list allocations: %w", err)
	}
	for _, a := range allocs {
		if strings.HasPrefix(a.JobID, "pg-") && (a.ClientStatus == "running" || a.ClientStatus == "pending") {
			v["allocation "+a.ID[:8]+" of "+a.JobID+"/"+a.TaskGroup] = true
		}
	}
	for _, prefix := range []string{"nomad/jobs/pg-", "pgbroker/instances/"} {
		vars, _, err := c.Variables().PrefixList(prefix, nil)
		if err != nil {
			return nil, fmt.Errorf("list variables: %w", err)
		}
		for _, va := range vars {
			v["variable "+va.Path] = true
		}
	}
	// Instance data directories (12 hex characters) and pgBackRest stanzas.
	for _, pattern := range []string{"*", "pgbackrest/archive/*", "pgbackrest/backup/*"} {
		dirs, _ := filepath.Glob(filepath.Join(dataRoot, pattern))
		for _, d := range dirs {
			if instanceDir.MatchString(filepath.Base(d)) {
				v["directory "+d] = true
			}
		}
	}
	keys, err := etcdKeysUnder("/pgbroker/")
	if err != nil {
		return nil, fmt.Errorf("list etcd keys: %w", err)
	}
	for _, k := range keys {
		// One line per Patroni scope, not per key.
		if parts := strings.SplitN(strings.TrimPrefix(k, "/pgbroker/"), "/", 2); len(parts) > 0 {
			v["etcd /pgbroker/"+parts[0]+"/"] = true
		}
	}
	users, err := etcdUsers()
	if err != nil {
		return nil, fmt.Errorf("list etcd users: %w", err)
	}
	for _, u := range users {
		if strings.HasPrefix(u, "pg-") { // an instance's Patroni login
			v["etcd user "+u] = true
		}
	}
	for _, p := range processesUnder(dataRoot) {
		v["process "+p] = true
	}
	return v, nil
}

// since lists, sorted, what now holds that before did not.
func (now stackView) since(before stackView) []string {
	var out []string
	for k := range now {
		if !before[k] {
			out = append(out, k)
		}
	}
	sort.Strings(out)
	return out
}

// leftovers polls for up to a minute (Nomad stops allocations and the GC
// removes them asynchronously) until nothing new remains, and returns what
// does.
func leftovers(before stackView) ([]string, error) {
	var left []string
	deadline := time.Now().Add(time.Minute)
	for {
		now, err := viewStack()
		if err != nil {
			return nil, err
		}
		left = now.since(before)
		if len(left) == 0 || time.Now().After(deadline) {
			return left, nil
		}
		time.Sleep(2 * time.Second)
	}
}

// processesUnder lists "<pid> <command line>" of processes whose command
// line names a path under dir (postgres -D, patroni's config, pgbackrest).
func processesUnder(dir string) []string {
	var out []string
	procs, _ := filepath.Glob("/proc/[0-9]*/cmdline")
	for _, f := range procs {
		b, err := os.ReadFile(f)
		if err != nil || !bytes.Contains(b, []byte(dir+"/")) {
			continue
		}
		cmd := strings.TrimSpace(string(bytes.ReplaceAll(b, []byte{0}, []byte{' '})))
		out = append(out, filepath.Base(filepath.Dir(f))+" "+cmd)
	}
	return out
}

// etcdKeysUnder lists the keys under prefix through etcd's v3 JSON gateway.
func etcdKeysUnder(prefix string) ([]string, error) {
	var resp struct {
		Kvs []struct {
			Key string `json:"key"`
		} `json:"kvs"`
	}
	if err := etcdCall("range", prefix, map[string]any{"keys_only": true}, &resp); err != nil {
		return nil, err
	}
	out := make([]string, 0, len(resp.Kvs))
	for _, kv := range resp.Kvs {
		k, err := base64.StdEncoding.DecodeString(kv.Key)
		if err != nil {
			return nil, err
		}
		out = append(out, string(k))
	}
	return out, nil
}

// etcdDeletePrefix deletes every key under prefix and returns how many.
func etcdDeletePrefix(prefix string) (int, error) {
	var resp struct {
		Deleted string `json:"deleted"`
	}
	if err := etcdCall("deleterange", prefix, nil, &resp); err != nil {
		return 0, err
	}
	n := 0
	_, _ = fmt.Sscan(resp.Deleted, &n)
	return n, nil
}

// etcdCall posts /v3/kv/<verb> for the key range of prefix.
func etcdCall(verb, prefix string, extra map[string]any, out any) error {
	end := []byte(prefix)
	end[len(end)-1]++
	req := map[string]any{
		"key":       base64.StdEncoding.EncodeToString([]byte(prefix)),
		"range_end": base64.StdEncoding.EncodeToString(end),
	}
	for k, v := range extra {
		req[k] = v
	}
	return etcdPost(verb, req, out)
}

// etcdPost posts req to /v3/kv/<verb> of the stack's first etcd endpoint
// as its root user and decodes the answer into out (nil: discarded).
func etcdPost(verb string, req map[string]any, out any) error {
	return etcdAsRoot("/v3/kv/"+verb, req, out)
}
