package tiers

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/pgbroker/pgbroker/adminconn"
)

// readOnlyFirst answers EnsureReplicationRole with errs in turn, then nil.
type readOnlyFirst struct {
	adminconn.AdminConn
	errs  []error
	calls int
}

func (a *readOnlyFirst) EnsureReplicationRole(context.Context, string) error {
	a.calls++
	if len(a.errs) == 0 {
		return nil
	}
	err := a.errs[0]
	a.errs = a.errs[1:]
	return err
}

// TestTheReplicationRoleWaitsForALeaderStillPromoting: a read-only answer
// (a leader whose promotion has not ended) is tried again; any other error
// ends at once, and so does a read-only leader past ctx's end.
func TestTheReplicationRoleWaitsForALeaderStillPromoting(t *testing.T) {
	readOnly := &pgconn.PgError{Code: "25006", Message: "cannot execute ALTER ROLE in a read-only transaction"}
	ctx := context.Background()

	a := &readOnlyFirst{errs: []error{readOnly, readOnly}}
	if err := ensureReplicationRole(ctx, a, "pw"); err != nil || a.calls != 3 {
		t.Errorf("after two read-only answers: %v in %d calls; want nil in 3", err, a.calls)
	}

	other := &readOnlyFirst{errs: []error{errors.New("connection refused")}}
	if err := ensureReplicationRole(ctx, other, "pw"); err == nil || other.calls != 1 {
		t.Errorf("another error: %v in %d calls; want it at once", err, other.calls)
	}

	short, cancel := context.WithTimeout(ctx, 300*time.Millisecond)
	defer cancel()
	always := &readOnlyFirst{errs: []error{readOnly, readOnly, readOnly, readOnly, readOnly, readOnly, readOnly, readOnly}}
	if err := ensureReplicationRole(short, always, "pw"); err == nil || !strings.Contains(err.Error(), "stayed read-only") {
		t.Errorf("read-only past the deadline: %v; want an error saying it stayed read-only", err)
	}
}
