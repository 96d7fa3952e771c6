package patroni

import (
	"encoding/json"
	"fmt"
	"strings"
)

// Member is one node of a cluster as Patroni reports it (GET /cluster,
// Patroni 3.0 REST API, utils.cluster_as_json).
type Member struct {
	Name     string `json:"name"`            // "node-<index>", its task group's name
	Role     string `json:"role"`            // "leader", "sync_standby", "replica"
	State    string `json:"state"`           // "running", "streaming", "starting", "stopped", ...
	Host     string `json:"host"`            // PostgreSQL address
	Port     int    `json:"port"`            // PostgreSQL port
	Timeline int    `json:"timeline"`        // PostgreSQL timeline
	LagBytes *int64 `json:"lag,omitempty"`   // WAL bytes behind the leader; nil on the leader and when Patroni says "unknown"
	APIURL   string `json:"api_url"`         // the member's REST API (…/patroni)
	Pending  bool   `json:"pending_restart"` // a parameter change waits for a restart
}

// UnmarshalJSON decodes a member of GET /cluster. Patroni writes "lag" as a
// number of bytes, or the string "unknown" for a member that has not
// reported a WAL position yet (a standby starting); that reads as nil.
func (m *Member) UnmarshalJSON(b []byte) error {
	type plain Member
	var raw struct {
		plain
		Lag json.RawMessage `json:"lag"`
	}
	if err := json.Unmarshal(b, &raw); err != nil {
		return err
	}
	*m = Member(raw.plain)
	if len(raw.Lag) == 0 || raw.Lag[0] == '"' || string(raw.Lag) == "null" {
		return nil
	}
	var lag int64
	if err := json.Unmarshal(raw.Lag, &lag); err != nil {
		return fmt.Errorf("member %q: lag %s is not a number of bytes", m.Name, raw.Lag)
	}
	m.LagBytes = &lag
	return nil
}

// DescribeMembers renders members for a user: "node-0 leader; node-1
// sync_standby streaming, lag 0 B".
func DescribeMembers(members []Member) string {
	parts := make([]string, 0, len(members))
	for _, m := range members {
		s := m.Name + " " + m.Role
		if m.Role != "leader" {
			s += " " + m.State
			if m.LagBytes != nil {
				s += fmt.Sprintf(", lag %d B", *m.LagBytes)
			}
		}
		parts = append(parts, s)
	}
	return strings.Join(parts, "; ")
}

// Leader returns the name of the running leader among members, "" when
// there is none (an election in progress, the leader stopped).
func Leader(members []Member) string {
	for _, m := range members {
		if m.Role == "leader" && m.State == "running" {
			return m.Name
		}
	}
	return ""
}

// Leads is the condition "name is the running leader".
func Leads(name string) func([]Member) bool {
	return func(members []Member) bool { return Leader(members) == name }
}

// Healthy is the condition "a running leader and want standbys running or
// streaming, one of them the synchronous standby" (the only one Patroni
// would promote in synchronous mode).
func Healthy(want int) func([]Member) bool {
	return func(members []Member) bool {
		standbys, sync := standbysUp(members)
		return Leader(members) != "" && standbys >= want && sync
	}
}

// Streaming is the condition "a running leader and want standbys running or
// streaming", synchronous or not.
func Streaming(want int) func([]Member) bool {
	return func(members []Member) bool {
		standbys, _ := standbysUp(members)
		return Leader(members) != "" && standbys >= want
	}
}

// standbysUp counts the members that are not the leader and run, and
// reports whether one of them is the synchronous standby.
func standbysUp(members []Member) (n int, sync bool) {
	for _, m := range members {
		if m.Role != "leader" && (m.State == "streaming" || m.State == "running") {
			n++
			sync = sync || m.Role == "sync_standby"
		}
	}
	return n, sync
}

// CanLead is the condition "name leads, or a leader runs and Patroni would
// accept a switchover from it to name": in synchronous mode only the
// synchronous standby is a candidate (Patroni answers 412 for another);
// otherwise any running or streaming standby is. Without a running leader
// (an election in progress) there is nobody to switch over from.
func CanLead(name string, synchronous bool) func([]Member) bool {
	return func(members []Member) bool {
		leader := Leader(members)
		if leader == name {
			return true
		}
		m, ok := member(members, name)
		switch {
		case !ok || leader == "":
			return false
		case m.Role == "sync_standby":
			return true
		default:
			return !synchronous && m.Role == "replica" && (m.State == "streaming" || m.State == "running")
		}
	}
}

// member returns the member called name, false when there is none.
func member(members []Member, name string) (Member, bool) {
	for _, m := range members {
		if m.Name == name {
			return m, true
		}
	}
	return Member{}, false
}
