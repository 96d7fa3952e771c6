package store_test

import (
	"context"
	"errors"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/pgbroker/pgbroker/store"
	"github.com/pgbroker/pgbroker/store/storetest"
)

// TestEveryEnqueueingWriteIsOneTransaction: the four writes that enqueue a
// job (a new instance with its provision operation, an operation on a live
// instance, a dump, a base backup) hand enqueue the transaction that holds
// their row, and record nothing when enqueue fails.
func TestEveryEnqueueingWriteIsOneTransaction(t *testing.T) {
	st := storetest.New(t)
	ctx := context.Background()
	inst := store.Instance{ID: "i-1", ShortID: "dddddddddddd", ServiceID: "postgresql", PlanID: "p", OrganizationGUID: "o", SpaceGUID: "s"}
	if _, err := st.Instances().CreateInstance(ctx, inst, store.Operation{ID: "op-1", Kind: store.KindProvision, PlanID: "p"},
		store.PortRange{Min: 40000, Max: 40009}, noEnqueue); err != nil {
		t.Fatal(err)
	}
	if err := st.Instances().FinishOperation(ctx, "op-1", store.Succeeded, "ready"); err != nil {
		t.Fatal(err)
	}
	writes := []struct {
		name  string
		table string // where the row lives; its id is the one enqueued
		write func(enqueue store.EnqueueFunc) error
	}{
		{"CreateInstance", "operations", func(enqueue store.EnqueueFunc) error {
			in := store.Instance{ID: "i-2", ShortID: "eeeeeeeeeeee", ServiceID: "postgresql", PlanID: "p", OrganizationGUID: "o", SpaceGUID: "s"}
			_, err := st.Instances().CreateInstance(ctx, in, store.Operation{ID: "op-2", Kind: store.KindProvision, PlanID: "p"},
				store.PortRange{Min: 40000, Max: 40009}, enqueue)
			return err
		}},
		{"StartOperation", "operations", func(enqueue store.EnqueueFunc) error {
			return st.Instances().StartOperation(ctx, store.Operation{ID: "op-3", InstanceID: "i-1", Kind: store.KindUpdate, PlanID: "p"}, enqueue)
		}},
		{"CreateBackup", "backups", func(enqueue store.EnqueueFunc) error {
			_, err := st.Backups().CreateBackup(ctx, store.Backup{ID: "d-1", InstanceID: "i-1", Kind: store.BackupManual, StorageKey: "k"}, enqueue)
			return err
		}},
		{"CreateBaseBackup", "base_backups", func(enqueue store.EnqueueFunc) error {
			_, err := st.Backups().CreateBaseBackup(ctx, "bb-1", "i-1", "2026-W48", enqueue)
			return err
		}},
	}
	queueDown := errors.New("queue unavailable")
	for _, w := range writes {
		t.Run(w.name, func(t *testing.T) {
			var enqueued string
			err := w.write(func(ctx context.Context, tx pgx.Tx, id string) error {
				enqueued = id
				return queueDown
			})
			if !errors.Is(err, queueDown) {
				t.Fatalf("err %v, want the enqueue failure", err)
			}
			if n := count(t, st, w.table, enqueued); n != 0 {
				t.Fatalf("%s: %d rows with id %q recorded although their job was not", w.table, n, enqueued)
			}
			var inTx int
			err = w.write(func(ctx context.Context, tx pgx.Tx, id string) error {
				return tx.QueryRow(ctx, `SELECT count(*) FROM `+w.table+` WHERE id = $1`, id).Scan(&inTx)
			})
			if err != nil || inTx != 1 {
				t.Fatalf("enqueue saw %d rows with the enqueued id in its transaction (err %v), want 1", inTx, err)
			}
		})
	}
	if _, err := st.Instances().GetInstance(ctx, "i-2"); err != nil {
		t.Fatalf("the instance created with its job is missing: %v", err)
	}
}

func count(t *testing.T, st *store.Store, table, id string) int {
	t.Helper()
	var n int
	if err := st.Pool().QueryRow(context.Background(), `SELECT count(*) FROM `+table+` WHERE id = $1`, id).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}
