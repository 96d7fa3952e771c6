package stats

import (
	"testing"
	"time"
)

func TestPeaksKeepTheRunningMaximumPerAllocation(t *testing.T) {
	p := NewPeaks()
	for _, mem := range []uint64{300, 500, 400} {
		n := Node{AllocationID: "a", MemoryBytes: mem, SwapBytes: mem / 100}
		p.Observe(&n)
		if mem == 400 && (n.MemoryMaxBytes != 500 || n.SwapMaxBytes != 5) {
			t.Fatalf("after 300, 500, 400: max %d swap max %d, want 500 and 5", n.MemoryMaxBytes, n.SwapMaxBytes)
		}
	}
	other := Node{AllocationID: "b", MemoryBytes: 10}
	p.Observe(&other)
	if other.MemoryMaxBytes != 10 {
		t.Fatalf("a new allocation starts from its own figure, got %d", other.MemoryMaxBytes)
	}
	p.Keep(map[string]bool{"b": true})
	if p.Len() != 1 {
		t.Fatalf("after Keep(b): %d allocations tracked, want 1", p.Len())
	}
	again := Node{AllocationID: "a", MemoryBytes: 1}
	p.Observe(&again)
	if again.MemoryMaxBytes != 1 {
		t.Fatalf("a forgotten allocation starts over, got max %d", again.MemoryMaxBytes)
	}
}

func TestTiersNestAndRefuseIntervalsThatDoNot(t *testing.T) {
	tiers, err := Tiers(15 * time.Second)
	if err != nil {
		t.Fatal(err)
	}
	want := []int{240, 288, 336}
	for i, tr := range tiers {
		if tr.Points() != want[i] {
			t.Errorf("tier %s: %d points, want %d", tr.Range, tr.Points(), want[i])
		}
		if i > 0 && tr.Step%tiers[i-1].Step != 0 {
			t.Errorf("tier %s step %s does not nest %s", tr.Range, tr.Step, tiers[i-1].Step)
		}
	}
	for _, bad := range []time.Duration{0, 500 * time.Millisecond, 7 * time.Second, 10 * time.Minute} {
		if _, err := Tiers(bad); err == nil {
			t.Errorf("Tiers(%s) accepted", bad)
		}
	}
	if _, ok := TierOf(tiers, "2h"); ok {
		t.Error("TierOf(2h) found a tier")
	}
	at := time.Date(2026, 1, 2, 3, 4, 59, 0, time.UTC)
	if got := tiers[1].Bucket(at); !got.Equal(time.Date(2026, 1, 2, 3, 0, 0, 0, time.UTC)) {
		t.Errorf("5-minute bucket of %s = %s", at, got)
	}
}

func TestAReadingFillsOnlyTheUnmeasuredNodeItNames(t *testing.T) {
	nodes := []Node{{AllocationID: "a", MemoryMaxBytes: 900}, {AllocationID: "b", Measured: true, MemoryBytes: 7}}
	Fill(nodes, &NodeReading{AllocationID: "a", CPUPercent: 3, MemoryBytes: 500, MemoryPeakBytes: 800, MemoryLimitBytes: 1000})
	Fill(nodes, &NodeReading{AllocationID: "b", MemoryBytes: 1})
	if a := nodes[0]; a.MemoryBytes != 500 || a.MemoryMaxBytes != 900 || a.MemoryLimitBytes != 1000 || a.CPUPercent != 3 {
		t.Errorf("node a %+v: want memory 500, max 900 (the higher), limit 1000, CPU 3", a)
	}
	if nodes[1].MemoryBytes != 7 {
		t.Errorf("Nomad's measured figures were replaced: %+v", nodes[1])
	}
}

func TestCPUMeterIsPercentOfOneCoreBetweenReadings(t *testing.T) {
	m, at := NewCPUMeter(), time.Unix(1000, 0)
	if p := m.Percent("a", 10, at); p != 0 {
		t.Fatalf("first reading %v, want 0", p)
	}
	if p := m.Percent("a", 13, at.Add(10*time.Second)); p != 30 {
		t.Fatalf("3 CPU seconds in 10s = %v%%, want 30", p)
	}
	if p := m.Percent("a", 12, at.Add(20*time.Second)); p != 0 {
		t.Fatalf("a total that went down gave %v, want 0", p)
	}
}
