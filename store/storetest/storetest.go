// Package storetest gives integration tests a fresh, migrated state database
// on the PostgreSQL named by DATABASE_URL (the local stack's, under `make
// test`). Without DATABASE_URL a test fails when CI=true and is skipped, with
// the reason, otherwise.
package storetest

import (
	"context"
	"net/url"
	"os"
	"strings"
	"testing"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/pgbroker/pgbroker/store"
)

// New returns a Store on a new database, dropped when the test ends.
func New(t testing.TB) *store.Store {
	t.Helper()
	st, _ := NewWithURL(t)
	return st
}

// NewWithURL is New, also returning the database's URL (for a second Store,
// as a second broker replica would open).
func NewWithURL(t testing.TB) (*store.Store, string) {
	t.Helper()
	base := os.Getenv("DATABASE_URL")
	if base == "" {
		if os.Getenv("CI") == "true" {
			t.Fatal("DATABASE_URL is not set: the state database is required in CI (run `make test`)")
		}
		t.Skip("DATABASE_URL is not set: run `make test` to bring up the state database")
	}
	ctx := context.Background()
	admin, err := pgx.Connect(ctx, base)
	if err != nil {
		t.Fatalf("connect to state database server: %v", err)
	}
	defer admin.Close(ctx)
	name := "pgbroker_unit_" + strings.ReplaceAll(uuid.NewString()[:13], "-", "")
	if _, err := admin.Exec(ctx, "CREATE DATABASE "+name); err != nil {
		t.Fatalf("create test database: %v", err)
	}
	u, err := url.Parse(base)
	if err != nil {
		t.Fatal(err)
	}
	u.Path = "/" + name
	st, err := store.Open(ctx, u.String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		st.Close()
		c, err := pgx.Connect(context.Background(), base)
		if err == nil {
			_, _ = c.Exec(context.Background(), "DROP DATABASE IF EXISTS "+name+" WITH (FORCE)")
			c.Close(context.Background())
		}
	})
	if err := st.Migrate(ctx); err != nil {
		t.Fatalf("migrate: %v", err)
	}
	return st, u.String()
}
