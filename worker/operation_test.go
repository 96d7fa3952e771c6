package worker

import (
	"errors"
	"testing"
)

// A step retried again and again names the last reason once: the CI log of
// stop 21 showed eight nested "(will retry: …)".
func TestARetriedStepNamesOneReason(t *testing.T) {
	desc := "waiting for Patroni to adopt node 0"
	for i := range 3 {
		desc = retrying(stepOf(desc), errors.New("tls error: EOF"))
		if want := "waiting for Patroni to adopt node 0 (will retry: tls error: EOF)"; desc != want {
			t.Fatalf("after %d retries: %q, want %q", i+1, desc, want)
		}
	}
}
