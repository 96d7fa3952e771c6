package store_test

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/pgbroker/pgbroker/store/storetest"
)

// TestTakeOverAbandonedFreesOnlyTheAttemptsOfBrokersThatStoppedBeating: of
// three running jobs, the one whose broker last beat a minute ago becomes
// available with an attempt error; the one of a broker that beats stays
// running; the one of a broker that never beat is left to River's rescue.
func TestTakeOverAbandonedFreesOnlyTheAttemptsOfBrokersThatStoppedBeating(t *testing.T) {
	s, _ := storetest.NewWithURL(t)
	ctx := context.Background()
	for _, id := range []string{"dead", "alive"} {
		if err := s.Beat(ctx, id); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := s.Pool().Exec(ctx, `UPDATE broker_heartbeats SET seen_at = now() - interval '1 minute' WHERE client_id = 'dead'`); err != nil {
		t.Fatal(err)
	}
	job := func(attemptedBy ...string) int64 {
		var id int64
		err := s.Pool().QueryRow(ctx, `INSERT INTO river_job (args, kind, max_attempts, queue, state, attempt, attempted_at, attempted_by)
			VALUES ('{}', 'operation', 10, 'default', 'running', 1, now() - interval '1 minute', $1) RETURNING id`, attemptedBy).Scan(&id)
		if err != nil {
			t.Fatal(err)
		}
		return id
	}
	abandoned, beating, unknown := job("alive", "dead"), job("dead", "alive"), job("never-beat")
	ids, err := s.TakeOverAbandoned(ctx, 20*time.Second)
	if err != nil || !slices.Equal(ids, []int64{abandoned}) {
		t.Fatalf("took over %v, %v; want [%d]", ids, err, abandoned)
	}
	state := func(id int64) (st string, errs int) {
		if err := s.Pool().QueryRow(ctx, `SELECT state::text, coalesce(cardinality(errors), 0) FROM river_job WHERE id = $1`, id).Scan(&st, &errs); err != nil {
			t.Fatal(err)
		}
		return st, errs
	}
	if st, errs := state(abandoned); st != "available" || errs != 1 {
		t.Errorf("abandoned job: %s with %d errors, want available with 1", st, errs)
	}
	for _, id := range []int64{beating, unknown} {
		if st, _ := state(id); st != "running" {
			t.Errorf("job %d: %s, want running", id, st)
		}
	}
	if again, err := s.TakeOverAbandoned(ctx, 20*time.Second); err != nil || len(again) != 0 {
		t.Fatalf("second sweep took over %v, %v", again, err)
	}
}
