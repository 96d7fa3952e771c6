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
// Nomad can also lose the event that runs the reload script after a render
// (hashicorp/nomad#24140): the file then names the node, HAProxy does not.
// Seen here too: both gateways of a restored instance answered <NOSRV> with
// a correct haproxy.cfg on disk. So HAProxy loads haproxy.loaded.cfg, a copy
// made at task start and by the reload script just before each reload
// (gateways.nomad.hcl): what the running HAProxy serves.
//
// A Watcher compares that file's server lines with the node service's
// registrations. A gateway that stays out of step for Settle is restarted
// in place: its template renders afresh from the current registrations
// (restart.render_templates) and HAProxy starts on it.
package gateway

import (
	"bufio"
	"bytes"
	"maps"
	"slices"
	"strconv"
	"strings"

	"github.com/hashicorp/nomad/api"
)

// Task is the gateway job's HAProxy task. LoadedPath is the configuration
// its HAProxy loaded, relative to the allocation directory; RenderedPath the
// template's output, read instead from gateways started before
// LoadedPath existed.
const (
	Task         = "haproxy"
	LoadedPath   = Task + "/local/haproxy.loaded.cfg"
	RenderedPath = Task + "/local/haproxy.cfg"
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
	return slices.Sorted(maps.Keys(seen))
}

// Registered returns the node service registrations in the form Servers
// gives, sorted and without repeats.
func Registered(regs []*api.ServiceRegistration) []string {
	seen := map[string]bool{}
	for _, r := range regs {
		// As the template prints them: {{ .Address }}:{{ .Port }}.
		seen[r.AllocID+" "+r.Address+":"+strconv.Itoa(r.Port)] = true
	}
	return slices.Sorted(maps.Keys(seen))
}
