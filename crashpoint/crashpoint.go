// Package crashpoint lets the acceptance suite crash the broker at a named
// step, the way a power cut or an OOM kill would: when the environment
// variable PGBROKER_CRASH_AT names the step, Hit sends SIGKILL to the
// process itself. Unset (as in production), Hit does nothing.
package crashpoint

import (
	"os"
	"syscall"
)

var target = os.Getenv("PGBROKER_CRASH_AT")

// trap, when set (Trap), is called at every point instead of the kill.
var trap func(name string)

// Hit kills the process when name is the configured crash point.
func Hit(name string) {
	if trap != nil {
		trap(name)
		return
	}
	if target != "" && target == name {
		_ = syscall.Kill(os.Getpid(), syscall.SIGKILL)
		select {} // the signal is on its way; never run past the point
	}
}

// Trap has every Hit call f(name) instead, until the returned restore is
// called: unit tests record the points a run passes and stop it at one (f
// panics). Not safe for concurrent use with Hit; tests using it must not
// run in parallel.
func Trap(f func(name string)) (restore func()) {
	trap = f
	return func() { trap = nil }
}
