package store

import (
	"context"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
)

// notifyChannel carries the id of every instance whose instance or
// operation rows a transaction changed (pg_notify, sent inside that
// transaction, so it arrives only if and after the change commits).
const notifyChannel = "pgbroker_instance_changed"

// maxCachedStatuses bounds the cache; past it the cache starts over.
const maxCachedStatuses = 100_000

// statusCache keeps the answers of InstanceOperation in memory, for
// last_operation polls and GET instance. Every broker replica LISTENs on
// notifyChannel and drops an instance's entries when it changes; while the
// listener is not connected the cache is bypassed. A reader that queried
// before a change stores its answer only if no change of that instance was
// announced meanwhile (per-instance generations), so a stale answer never
// outlives the notification that follows the commit (milliseconds).
type statusCache struct {
	mu      sync.Mutex
	live    bool
	epoch   uint64                       // bumped when the listener (re)connects
	gen     map[string]uint64            // instance id → changes announced
	entries map[string]map[string]status // instance id → operation id ("" = latest) → answer
	size    int
}

type status struct {
	inst  Instance
	op    Operation
	found bool
}

func newStatusCache() *statusCache {
	return &statusCache{gen: map[string]uint64{}, entries: map[string]map[string]status{}}
}

// lookup returns a cached answer, or a token to store the fresh one with.
func (c *statusCache) lookup(instanceID, opID string) (status, bool, cacheToken) {
	c.mu.Lock()
	defer c.mu.Unlock()
	tok := cacheToken{ok: c.live, epoch: c.epoch, gen: c.gen[instanceID]}
	if !c.live {
		return status{}, false, tok
	}
	st, hit := c.entries[instanceID][opID]
	return st, hit, tok
}

type cacheToken struct {
	ok         bool
	epoch, gen uint64
}

// store keeps st unless the cache went down or the instance changed since tok.
func (c *statusCache) store(instanceID, opID string, st status, tok cacheToken) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !tok.ok || !c.live || c.epoch != tok.epoch || c.gen[instanceID] != tok.gen {
		return
	}
	if c.size >= maxCachedStatuses {
		c.entries, c.size = map[string]map[string]status{}, 0
	}
	m := c.entries[instanceID]
	if m == nil {
		m = map[string]status{}
		c.entries[instanceID] = m
	}
	if _, had := m[opID]; !had {
		c.size++
	}
	m[opID] = st
}

func (c *statusCache) changed(instanceID string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.gen[instanceID]++
	c.size -= len(c.entries[instanceID])
	delete(c.entries, instanceID)
}

func (c *statusCache) setLive(live bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.live = live
	c.epoch++
	c.entries, c.size = map[string]map[string]status{}, 0
}

// StartStatusCache LISTENs for instance changes on a connection of its own
// and serves InstanceOperation from memory until ctx ends. It reconnects by
// itself; while disconnected every read goes to the database.
func (s *Store) StartStatusCache(ctx context.Context) {
	s.cache = newStatusCache()
	go func() {
		for ctx.Err() == nil {
			if err := s.listen(ctx); err != nil && ctx.Err() == nil {
				time.Sleep(time.Second)
			}
		}
	}()
}

func (s *Store) listen(ctx context.Context) error {
	conn, err := pgx.ConnectConfig(ctx, s.pool.Config().ConnConfig.Copy())
	if err != nil {
		return err
	}
	defer conn.Close(context.WithoutCancel(ctx))
	if _, err := conn.Exec(ctx, "LISTEN "+notifyChannel); err != nil {
		return err
	}
	s.cache.setLive(true)
	defer s.cache.setLive(false)
	for {
		n, err := conn.WaitForNotification(ctx)
		if err != nil {
			return err
		}
		s.cache.changed(n.Payload)
	}
}

// announce tells every replica's cache that instanceID changed, when tx commits.
func announce(ctx context.Context, tx pgx.Tx, instanceID string) error {
	_, err := tx.Exec(ctx, `SELECT pg_notify($1, $2)`, notifyChannel, instanceID)
	return err
}
