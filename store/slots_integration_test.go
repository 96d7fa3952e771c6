package store_test

import (
	"context"
	"testing"

	"github.com/pgbroker/pgbroker/store"
	"github.com/pgbroker/pgbroker/store/storetest"
)

// TestBackupSlotsAreSharedByEveryBroker: two Store values (two broker
// replicas) share n = 2 backup slots: the third taker gets none until one is
// released, and a slot whose connection is gone is free again.
func TestBackupSlotsAreSharedByEveryBroker(t *testing.T) {
	a, url := storetest.NewWithURL(t)
	ctx := context.Background()
	b, err := store.Open(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	take := func(st *store.Store) (*store.BackupSlot, bool) {
		t.Helper()
		slot, ok, err := st.Backups().TryBackupSlot(ctx, 2)
		if err != nil {
			t.Fatal(err)
		}
		return slot, ok
	}
	first, ok1 := take(a)
	second, ok2 := take(b)
	if !ok1 || !ok2 || first.Slot == second.Slot {
		t.Fatalf("two takers of 2 slots: %v %v, slots %v %v", ok1, ok2, first, second)
	}
	if _, ok := take(a); ok {
		t.Fatal("a third taker of 2 slots got one")
	}
	second.Release()
	third, ok := take(a)
	if !ok || third.Slot != second.Slot {
		t.Fatalf("after a release: ok %v slot %v, want slot %d", ok, third, second.Slot)
	}
	first.Release()
	third.Release()
	for i := 0; i < 2; i++ {
		if _, ok := take(b); !ok {
			t.Fatalf("slot %d not free after every release", i)
		}
	}
}
