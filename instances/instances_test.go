package instances

import (
	"slices"
	"testing"
	"time"

	"github.com/pgbroker/pgbroker/catalog"
	"github.com/pgbroker/pgbroker/store"
)

func TestTargetKeepsTheReadOnlyPortOnlyOnPlansWithStandbys(t *testing.T) {
	stored := store.Instance{ShortID: "0123456789ab", GatewayPort: 40001, ReadOnlyPort: 40002, NodeID: "n1",
		ForceTLS: true, Extensions: []string{"pgcrypto"}}
	ha := Target(stored, catalog.Plan{Nodes: 2})
	if ha.ShortID != "0123456789ab" || ha.GatewayPort != 40001 || ha.ReadOnlyPort != 40002 || ha.NodeID != "n1" ||
		!ha.ForceTLS || !slices.Equal(ha.Extensions, []string{"pgcrypto"}) {
		t.Fatalf("Business target %+v does not carry the stored instance", ha)
	}
	// A port kept after a change down to a single-node plan has no listener.
	if single := Target(stored, catalog.Plan{Nodes: 1}); single.ReadOnlyPort != 0 || single.GatewayPort != 40001 {
		t.Fatalf("Starter target %+v", single)
	}
}

func TestSizeOfCarriesEveryFigureThatShapesTheJobs(t *testing.T) {
	plan := catalog.Plan{MemoryMiB: 512, CPUMHz: 250, Nodes: 2, Gateways: 2, MaxConnections: 100,
		AutovacuumNaptime: 5 * time.Minute, Backups: catalog.BackupPolicy{PITRDays: 7}}
	s := SizeOf(plan)
	if s.MemoryMiB != 512 || s.CPUMHz != 250 || s.Nodes != 2 || s.Gateways != 2 || s.MaxConnections != 100 ||
		s.AutovacuumNaptime != 5*time.Minute || s.PITRDays != 7 || !s.HA() {
		t.Fatalf("SizeOf(%+v) = %+v", plan, s)
	}
}
