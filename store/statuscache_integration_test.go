package store_test

import (
	"context"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/pgbroker/pgbroker/store"
	"github.com/pgbroker/pgbroker/store/storetest"
)

func noEnqueue(context.Context, pgx.Tx, string) error { return nil }

// TestStatusCacheFollowsChangesFromAnotherReplica: two Store values on one
// database, as two broker replicas; the reader caches, the writer changes
// the operation, and the reader sees it within the notification delay.
func TestStatusCacheFollowsChangesFromAnotherReplica(t *testing.T) {
	writer, url := storetest.NewWithURL(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	reader, err := store.Open(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer reader.Close()
	reader.StartStatusCache(ctx)
	time.Sleep(200 * time.Millisecond) // let the listener connect

	inst := store.Instance{ID: "i-1", ShortID: "aaaaaaaaaaaa", ServiceID: "postgresql", PlanID: "p", OrganizationGUID: "o", SpaceGUID: "s"}
	op := store.Operation{ID: "op-1", Kind: store.KindProvision, PlanID: "p", Description: "queued"}
	if _, err := writer.Instances().CreateInstance(ctx, inst, op, store.PortRange{Min: 40000, Max: 40001}, noEnqueue); err != nil {
		t.Fatal(err)
	}
	read := func() store.Operation {
		_, got, found, err := reader.Instances().InstanceOperation(ctx, "i-1", "")
		if err != nil || !found {
			t.Fatalf("read: %v %v", found, err)
		}
		return got
	}
	if got := read(); got.Description != "queued" {
		t.Fatalf("description %q", got.Description)
	}
	for _, step := range []string{"starting node 1 of 1", "creating the database"} {
		if err := writer.Instances().SetProgress(ctx, "op-1", step); err != nil {
			t.Fatal(err)
		}
		waitUntil(t, func() bool { return read().Description == step })
	}
	if err := writer.Instances().FinishOperation(ctx, "op-1", store.Succeeded, "ready"); err != nil {
		t.Fatal(err)
	}
	waitUntil(t, func() bool { o := read(); return o.State == store.Succeeded && o.Description == "ready" })
}

func waitUntil(t *testing.T, ok func() bool) {
	t.Helper()
	deadline := time.Now().Add(2 * time.Second)
	for !ok() {
		if time.Now().After(deadline) {
			t.Fatal("the cache did not follow the change within 2 s")
		}
		time.Sleep(5 * time.Millisecond)
	}
}
