package patroni

import (
	"encoding/json"
	"strings"
	"testing"
)

// clusterJSON is GET /cluster of Debian's Patroni 3.0.2 for a Business
// instance whose second standby has not reported a WAL position yet.
const clusterJSON = `{"members": [
 {"name": "node-1", "role": "sync_standby", "state": "streaming", "api_url": "http://127.0.0.2:24571/patroni", "host": "127.0.0.2", "port": 25432, "timeline": 3, "lag": 4096},
 {"name": "node-0", "role": "leader", "state": "running", "api_url": "http://127.0.0.1:24570/patroni", "host": "127.0.0.1", "port": 25431, "timeline": 3, "pending_restart": true},
 {"name": "node-2", "role": "replica", "state": "starting", "api_url": "http://127.0.0.3:24572/patroni", "host": "127.0.0.3", "port": 25433, "lag": "unknown"}
], "scope": "pg-0123456789ab"}`

func TestMemberDecodesPatroniClusterAnswer(t *testing.T) {
	var cluster struct{ Members []Member }
	if err := json.Unmarshal([]byte(clusterJSON), &cluster); err != nil {
		t.Fatalf("decode /cluster: %v", err)
	}
	if len(cluster.Members) != 3 {
		t.Fatalf("got %d members, want 3", len(cluster.Members))
	}
	sync, leader, starting := cluster.Members[0], cluster.Members[1], cluster.Members[2]
	if sync.Name != "node-1" || sync.Role != "sync_standby" || sync.State != "streaming" || sync.Host != "127.0.0.2" ||
		sync.Port != 25432 || sync.Timeline != 3 || sync.APIURL != "http://127.0.0.2:24571/patroni" {
		t.Errorf("sync standby decoded as %+v", sync)
	}
	if sync.LagBytes == nil || *sync.LagBytes != 4096 {
		t.Errorf("sync standby lag %v, want 4096", sync.LagBytes)
	}
	if leader.LagBytes != nil || !leader.Pending {
		t.Errorf("leader decoded as %+v, want no lag and a pending restart", leader)
	}
	if starting.LagBytes != nil || starting.State != "starting" {
		t.Errorf(`member with lag "unknown" decoded as %+v, want no lag`, starting)
	}
}

func TestMemberRejectsALagThatIsNeitherBytesNorUnknown(t *testing.T) {
	var m Member
	err := json.Unmarshal([]byte(`{"name": "node-1", "lag": {"bytes": 1}}`), &m)
	if err == nil || !strings.Contains(err.Error(), "node-1") {
		t.Fatalf("got %v, want an error naming the member", err)
	}
}

func TestDescribeMembersGivesRoleStateAndLag(t *testing.T) {
	members := []Member{
		{Name: "node-0", Role: "leader", State: "running"},
		{Name: "node-1", Role: "sync_standby", State: "streaming", LagBytes: lag(0)},
		{Name: "node-2", Role: "replica", State: "starting"},
	}
	want := "node-0 leader; node-1 sync_standby streaming, lag 0 B; node-2 replica starting"
	if got := DescribeMembers(members); got != want {
		t.Fatalf("got %q, want %q", got, want)
	}
}

func TestClusterConditions(t *testing.T) {
	leader := Member{Name: "node-0", Role: "leader", State: "running"}
	stoppedLeader := Member{Name: "node-0", Role: "leader", State: "stopped"}
	sync := Member{Name: "node-1", Role: "sync_standby", State: "streaming"}
	async := Member{Name: "node-1", Role: "replica", State: "streaming"}
	starting := Member{Name: "node-1", Role: "replica", State: "starting"}
	cases := []struct {
		name    string
		members []Member
		leader  string
		healthy bool // Healthy(1)
		stream  bool // Streaming(1)
		syncOK  bool // CanLead("node-1", true)
		asyncOK bool // CanLead("node-1", false)
	}{
		{"leader and sync standby", []Member{leader, sync}, "node-0", true, true, true, true},
		{"leader and async standby", []Member{leader, async}, "node-0", false, true, false, true},
		{"standby starting", []Member{leader, starting}, "node-0", false, false, false, false},
		{"leader stopped", []Member{stoppedLeader, sync}, "", false, false, false, false},
		{"no leader at all", []Member{sync}, "", false, false, false, false},
		{"leader alone", []Member{leader}, "node-0", false, false, false, false},
		{"candidate leads", []Member{{Name: "node-1", Role: "leader", State: "running"}, {Name: "node-0", Role: "replica", State: "streaming"}}, "node-1", false, true, true, true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if got := Leader(tc.members); got != tc.leader {
				t.Errorf("Leader = %q, want %q", got, tc.leader)
			}
			if got := Healthy(1)(tc.members); got != tc.healthy {
				t.Errorf("Healthy(1) = %v, want %v", got, tc.healthy)
			}
			if got := Streaming(1)(tc.members); got != tc.stream {
				t.Errorf("Streaming(1) = %v, want %v", got, tc.stream)
			}
			if got := CanLead("node-1", true)(tc.members); got != tc.syncOK {
				t.Errorf("CanLead(node-1, synchronous) = %v, want %v", got, tc.syncOK)
			}
			if got := CanLead("node-1", false)(tc.members); got != tc.asyncOK {
				t.Errorf("CanLead(node-1, asynchronous) = %v, want %v", got, tc.asyncOK)
			}
		})
	}
}

func TestAPIBaseReadsThePatroniTag(t *testing.T) {
	if got := APIBase("127.0.0.2", []string{"pgbackrest=8432", "patroni=24571"}); got != "https://127.0.0.2:24571" {
		t.Errorf("got %q", got)
	}
	if got := APIBase("127.0.0.2", []string{"pgbackrest=8432"}); got != "" {
		t.Errorf("a node without Patroni got %q, want none", got)
	}
}
