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

// Hit kills the process when name is the configured crash point.
func Hit(name string) {
	if target != "" && target == name {
		_ = syscall.Kill(os.Getpid(), syscall.SIGKILL)
		select {} // the signal is on its way; never run past the point
	}
}
