package webauth

import (
	"context"
	"errors"
	"net/http"
	"sync"
	"time"
)

// ErrLoginRefused means the username and password do not log in to the
// instance's database as one of its users (a wrong password, an unknown
// role, a role without LOGIN, or a role that is not the instance's).
var ErrLoginRefused = errors.New("the username or password is wrong, or the user may not log in")

// Check says whether a session still stands: its user still exists on its
// instance, may log in, and is still read-write or read-only as it was.
// An error wrapping ErrLoginRefused ends the session. Any other error (the
// instance restarting, say) lets the request through unremembered: the
// overview must show the operation that restarts it, and what needs the
// database fails on its own.
type Check func(ctx context.Context, ss Session) error

// revalidation caches Check's verdicts: a session's user is asked about at
// most once per every.
type revalidation struct {
	check Check
	every time.Duration
	mu    sync.Mutex
	seen  map[Session]time.Time // when check last passed
}

// Revalidate makes Verify ask check about a session's user at most once
// per every, so a user deleted or made read-only loses the dashboard within
// every. Call it before serving.
func (s *Sessions) Revalidate(check Check, every time.Duration) {
	s.recheck = &revalidation{check: check, every: every, seen: map[Session]time.Time{}}
}

// Verify is FromRequest, then the Revalidate check. Errors: ErrNoSession,
// ErrLoginRefused (the user is gone).
func (s *Sessions) Verify(ctx context.Context, r *http.Request, instanceID string) (Session, error) {
	ss, err := s.FromRequest(r, instanceID, time.Now())
	if err != nil || s.recheck == nil {
		return ss, err
	}
	return ss, s.recheck.stands(ctx, ss, time.Now())
}

func (v *revalidation) stands(ctx context.Context, ss Session, now time.Time) error {
	v.mu.Lock()
	last, ok := v.seen[ss]
	v.mu.Unlock()
	if ok && now.Sub(last) < v.every {
		return nil
	}
	if err := v.check(ctx, ss); errors.Is(err, ErrLoginRefused) {
		return err
	} else if err != nil {
		return nil
	}
	v.mu.Lock()
	defer v.mu.Unlock()
	if len(v.seen) >= maxBuckets {
		for k, t := range v.seen {
			if now.Sub(t) >= v.every || now.After(k.Expires) {
				delete(v.seen, k)
			}
		}
	}
	if len(v.seen) < maxBuckets {
		v.seen[ss] = now
	}
	return nil
}
