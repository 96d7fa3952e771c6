package webauth

import (
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// LoginLimits bound login attempts: each client address and each instance
// has a token bucket (golang.org/x/time/rate); an attempt takes a token
// from both, and is refused while either is empty. A client guessing one
// instance's passwords gets Burst attempts then one per Every; many clients
// against one instance share the instance's bucket.
type LoginLimits struct {
	ClientEvery   time.Duration // one more attempt per client address this often
	ClientBurst   int
	InstanceEvery time.Duration // one more attempt per instance this often
	InstanceBurst int
}

// DefaultLoginLimits: 10 attempts per client address then one per 30 s;
// 30 per instance then one per 2 s.
var DefaultLoginLimits = LoginLimits{ClientEvery: 30 * time.Second, ClientBurst: 10,
	InstanceEvery: 2 * time.Second, InstanceBurst: 30}

// maxBuckets bounds each map: past it, buckets that have refilled are
// dropped (they hold nothing a new bucket would not).
const maxBuckets = 10000

// Limiter applies LoginLimits. Safe for concurrent use.
type Limiter struct {
	limits    LoginLimits
	mu        sync.Mutex
	clients   map[string]*rate.Limiter
	instances map[string]*rate.Limiter
}

// NewLimiter returns a Limiter applying l.
func NewLimiter(l LoginLimits) *Limiter {
	return &Limiter{limits: l, clients: map[string]*rate.Limiter{}, instances: map[string]*rate.Limiter{}}
}

// Allow takes an attempt of client (its address) on instanceID at now. It
// reports false, with how long to wait, when either bucket is empty; then
// neither bucket is charged.
func (l *Limiter) Allow(client, instanceID string, now time.Time) (bool, time.Duration) {
	l.mu.Lock()
	defer l.mu.Unlock()
	c := bucket(l.clients, client, l.limits.ClientEvery, l.limits.ClientBurst, now)
	i := bucket(l.instances, instanceID, l.limits.InstanceEvery, l.limits.InstanceBurst, now)
	rc, ri := c.ReserveN(now, 1), i.ReserveN(now, 1)
	wait := max(rc.DelayFrom(now), ri.DelayFrom(now))
	if wait > 0 {
		rc.CancelAt(now)
		ri.CancelAt(now)
		return false, wait
	}
	return true, 0
}

func bucket(m map[string]*rate.Limiter, key string, every time.Duration, burst int, now time.Time) *rate.Limiter {
	if b, ok := m[key]; ok {
		return b
	}
	if len(m) >= maxBuckets {
		for k, b := range m {
			if b.TokensAt(now) >= float64(b.Burst()) {
				delete(m, k)
			}
		}
		for k := range m { // still full: make room at an arbitrary key
			if len(m) < maxBuckets {
				break
			}
			delete(m, k)
		}
	}
	b := rate.NewLimiter(rate.Every(every), burst)
	m[key] = b
	return b
}
