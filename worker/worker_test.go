package worker

import (
	"testing"
	"time"

	"github.com/riverqueue/river/rivertype"
)

func TestRetryPolicyBacksOffUpToTheCap(t *testing.T) {
	p := retryPolicy{max: 30 * time.Second}
	for _, tc := range []struct {
		attempt int
		want    time.Duration
	}{{1, 2 * time.Second}, {2, 4 * time.Second}, {4, 16 * time.Second}, {5, 30 * time.Second}, {50, 30 * time.Second}} {
		got := time.Until(p.NextRetry(&rivertype.JobRow{Attempt: tc.attempt}))
		if got > tc.want || got < tc.want-time.Second {
			t.Errorf("attempt %d: retry in %s, want %s", tc.attempt, got, tc.want)
		}
	}
}
