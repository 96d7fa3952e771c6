// Package gateway keeps each instance's gateways in step with its nodes.
//
// A gateway is HAProxy. Its configuration is a Nomad template over the node
// service pg-<short>-node (nomad-jobs/gateways.nomad.hcl). Nomad re-renders
// it when the service changes, and HAProxy reloads. Nomad's template watch
// can miss a change (hashicorp/nomad#11558 shows the same for Consul
// services). Seen here after a node was replaced during a restore: one
// gateway kept an empty server list, and every connection through it ended
// with <NOSRV>, while the other gateway routed to the new node.
//
// A Watcher compares what each running gateway rendered (the server lines
// of its haproxy.cfg) with the node service's registrations. A gateway that
// stays out of step for Settle is restarted in place: its template renders
// afresh from the current registrations.
package gateway

import (
	"bufio"
	"bytes"
	"sort"
	"strconv"
	"strings"

	"github.com/hashicorp/nomad/api"
)

// Task is the gateway job's HAProxy task, and ConfigPath its rendered
// configuration relative to the allocation directory.
const (
	Task       = "haproxy"
	ConfigPath = Task + "/local/haproxy.cfg"
)

// Servers returns the servers a rendered haproxy.cfg lists, each as
// "<allocation id> <address>:<port>", sorted and without repeats (the
// read-write and the read-only backends list the same nodes).
func Servers(cfg []byte) []string {
	seen := map[string]bool{}
	sc := bufio.NewScanner(bytes.NewReader(cfg))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) >= 3 && f[0] == "server" {
			seen[f[1]+" "+f[2]] = true
		}
	}
	return sorted(seen)
}

// Registered returns the node service registrations in the form Servers
// gives, sorted and without repeats.
func Registered(regs []*api.ServiceRegistration) []string {
	seen := map[string]bool{}
	for _, r := range regs {
		// As the template prints them: {{ .Address }}:{{ .Port }}.
		seen[r.AllocID+" "+r.Address+":"+strconv.Itoa(r.Port)] = true
	}
	return sorted(seen)
}

func sorted(set map[string]bool) []string {
	out := make([]string, 0, len(set))
	for s := range set {
		out = append(out, s)
	}
	sort.Strings(out)
	return out
}
