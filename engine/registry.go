package engine

import (
	"context"
	"encoding/json"
	"hash/maphash"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/golang-lru/v2/simplelru"
	"github.com/jwtgate/jwtgate/engine/parallel"
)

// The registry index: a node keeps the kid of every registered key in
// memory (a 64-bit seeded hash each, in its key-cache shard), loaded from
// the store at start with RegistryScanner.ScanKIDs and kept current by its
// own changes and the store's change feed (Invalidate marks a kid as
// possibly registered; a store read then tells). While it is complete, a
// token whose kid is not in it is refused without asking the store, so a
// flood of unknown kids costs the store nothing. It only ever errs on the
// side of "possibly registered": that costs one store read, never a wrong
// answer. InvalidateAll (a feed that lost track) reloads it; until the
// reload is done, unknown kids go to the store (and the negative cache)
// as without an index.
//
// The set of projects with keys is kept the same way, so that the JWKS of a
// project that does not exist is answered without a store read; the JWKS of
// the others is cached until a key changes.

// registryRetryMax bounds the wait between failed index loads.
const registryRetryMax = 30 * time.Second

// maxUnresolved bounds the kids learnt from the change feed whose project
// is not known yet; beyond it the index is reloaded instead.
const maxUnresolved = 1 << 16

type registry struct {
	c       *keyCache
	scanner RegistryScanner  // nil: no index
	recent  RecentKeysLoader // nil: no warming
	seed    maphash.Seed

	indexed atomic.Bool // the kid index is complete
	loading atomic.Bool // a load runs: marks are also kept in fresh
	closed  atomic.Bool

	mu            sync.Mutex
	running       bool
	again         bool
	projects      map[uint64]struct{}
	freshProjects map[uint64]struct{} // projects added while a load runs
	queue         []string            // kids to resolve (project unknown)
	resolving     bool
	unresolved    int // len(queue) + the one being resolved
	readyCh       chan struct{}
	readyOnce     sync.Once
	last          LoadReport
}

// LoadReport describes the last load of the registry index.
type LoadReport struct {
	KIDs     int           // kids in the registry
	Warmed   int           // keys read and prepared into the key cache
	Duration time.Duration // scan and warming
	Err      error         // the last failure, nil after a success
}

func (r *registry) init(c *keyCache) {
	r.c = c
	r.seed = maphash.MakeSeed()
	r.projects = make(map[uint64]struct{})
	r.readyCh = make(chan struct{})
	r.scanner, _ = c.store.(RegistryScanner)
	r.recent, _ = c.store.(RecentKeysLoader)
	if r.scanner == nil {
		r.markReady()
	}
}

func (r *registry) markReady() { r.readyOnce.Do(func() { close(r.readyCh) }) }

func (r *registry) projectHash(p []byte) uint64 { return maphash.Bytes(r.seed, p) }

// addProject records that project has a key.
func (r *registry) addProject(project string) {
	h := maphash.String(r.seed, project)
	r.mu.Lock()
	if _, ok := r.projects[h]; !ok {
		r.projects[h] = struct{}{}
	}
	if r.loading.Load() {
		if r.freshProjects == nil {
			r.freshProjects = make(map[uint64]struct{})
		}
		r.freshProjects[h] = struct{}{}
	}
	r.mu.Unlock()
}

// mayHaveProject reports whether project may have keys: false only when
// the index is complete and knows it has none.
func (r *registry) mayHaveProject(project string) bool {
	if !r.indexed.Load() {
		return true
	}
	h := maphash.String(r.seed, project)
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.unresolved > 0 {
		return true
	}
	_, ok := r.projects[h]
	return ok
}

// resolve learns the project of kid, a kid the change feed announced that
// the index did not know, by reading it once from the store (which also
// caches a new key before its first use).
func (r *registry) resolve(kid string) {
	r.mu.Lock()
	if len(r.queue) >= maxUnresolved {
		r.mu.Unlock()
		r.reload()
		return
	}
	r.queue = append(r.queue, kid)
	r.unresolved++
	start := !r.resolving
	r.resolving = true
	r.mu.Unlock()
	if start {
		go r.resolveLoop()
	}
}

func (r *registry) resolveLoop() {
	for {
		r.mu.Lock()
		if len(r.queue) == 0 || r.closed.Load() {
			r.resolving = false
			r.unresolved -= len(r.queue)
			r.queue = nil
			r.mu.Unlock()
			return
		}
		kid := r.queue[0]
		r.queue = r.queue[1:]
		r.mu.Unlock()
		_, err := r.c.get([]byte(kid), time.Now().UnixNano())
		r.mu.Lock()
		r.unresolved--
		r.mu.Unlock()
		if err != nil {
			r.reload() // the store failed: learn everything again
		}
	}
}

// start loads the index unless a load ran or runs already.
func (r *registry) start() {
	r.mu.Lock()
	started := r.running || r.indexed.Load()
	r.mu.Unlock()
	if !started {
		r.reload()
	}
}

// reload (re)loads the index in the background; calls while a load runs
// make it run once more afterwards.
func (r *registry) reload() {
	if r.scanner == nil || r.closed.Load() {
		return
	}
	r.mu.Lock()
	if r.running {
		r.again = true
		r.mu.Unlock()
		return
	}
	r.running = true
	r.mu.Unlock()
	go r.run()
}

func (r *registry) run() {
	wait := time.Second
	for {
		r.mu.Lock()
		r.again = false
		r.mu.Unlock()
		rep := r.load()
		r.mu.Lock()
		if rep.Err != nil {
			r.last.Err = rep.Err
		}
		switch {
		case r.closed.Load():
		case rep.Err != nil:
			r.again = true
		case r.again:
			wait = 0
		}
		if !r.again || r.closed.Load() {
			r.running = false
			r.mu.Unlock()
			return
		}
		r.mu.Unlock()
		if rep.Err != nil {
			time.Sleep(wait)
			wait = min(wait*2, registryRetryMax)
		} else {
			wait = time.Second
		}
	}
}

// load scans the registry into fresh per-shard sets and swaps them in,
// adding the kids marked while it ran; then warms the key cache.
func (r *registry) load() (rep LoadReport) {
	c := r.c
	start := time.Now()
	r.loading.Store(true)
	defer r.loading.Store(false)
	sets := make([]map[uint64]struct{}, len(c.shards))
	for i := range sets {
		sets[i] = make(map[uint64]struct{}, len(c.shards[i].known))
	}
	projects := make(map[uint64]struct{}, len(r.projects))
	// Warm the key cache while the kids are scanned: the two read
	// different things and keep two cores (and the store) busy.
	var warmErr error
	warmed := make(chan struct{})
	go func() {
		defer close(warmed)
		rep.Warmed, warmErr = r.warm()
	}()
	ctx, cancel := context.WithTimeout(context.Background(), 10*c.timeout+time.Minute)
	err := r.scanner.ScanKIDs(ctx, func(kid, project []byte) {
		h := c.hash(kid)
		sets[h&c.mask][h] = struct{}{}
		projects[r.projectHash(project)] = struct{}{}
		rep.KIDs++
	})
	cancel()
	<-warmed
	if err != nil {
		rep.Err = err
		return rep
	}
	for i := range c.shards {
		sh := &c.shards[i]
		sh.mu.Lock()
		for h := range sh.fresh {
			sets[i][h] = struct{}{}
		}
		sh.fresh = nil
		sh.known = sets[i]
		sh.mu.Unlock()
	}
	r.mu.Lock()
	for h := range r.freshProjects {
		projects[h] = struct{}{}
	}
	r.freshProjects = nil
	r.projects = projects
	r.loading.Store(false)
	r.indexed.Store(true)
	r.mu.Unlock()
	rep.Err = warmErr
	rep.Duration = time.Since(start)
	r.mu.Lock()
	r.last = rep
	r.mu.Unlock()
	r.markReady()
	return rep
}

// warm reads the most recently used keys (as many as the key cache holds)
// and prepares them into the cache, least recent first so that the most
// recent end up the hottest. It stops at the first invalidation: the keys
// read may predate it, and the rest load on first use.
func (r *registry) warm() (int, error) {
	c := r.c
	if r.recent == nil {
		return 0, nil
	}
	n := c.maxBytes / typicalEntryBytes
	if c.maxKeys > 0 {
		n = min(n, c.maxKeys)
	}
	if n <= 0 {
		return 0, nil
	}
	ep := c.epoch.Load()
	ctx, cancel := context.WithTimeout(context.Background(), 10*c.timeout+time.Minute)
	keys, err := r.recent.RecentKeys(ctx, n)
	cancel()
	if err != nil {
		return 0, err
	}
	entries := make([]*keyEntry, len(keys))
	parallel.For(len(keys), func(i int) {
		if keys[i] != nil {
			entries[i], _ = newKeyEntry(keys[i])
		}
	})
	warmed := 0
	for i := len(entries) - 1; i >= 0; i-- {
		e := entries[i]
		if e == nil {
			continue
		}
		h := c.hash([]byte(e.kid))
		sh := c.shardOf(h)
		sh.mu.Lock()
		if c.epoch.Load() != ep {
			sh.mu.Unlock()
			break
		}
		if _, ok := sh.lru.Peek(e.kid); !ok {
			c.add(sh, e.kid, e)
			warmed++
		}
		c.markKnown(sh, h)
		sh.mu.Unlock()
	}
	return warmed, nil
}

// jwksCache holds the JWKS document of recently asked projects, each valid
// until the next key change (the key cache's epoch moves), bounded in count
// and bytes.
type jwksCache struct {
	mu    sync.Mutex
	lru   *simplelru.LRU[string, *jwksEntry]
	bytes int
}

type jwksEntry struct {
	epoch uint64
	body  []byte // nil: the project has no keys
}

const (
	jwksCacheEntries = 4096
	jwksCacheBytes   = 16 << 20
)

func newJWKSCache() *jwksCache {
	j := &jwksCache{}
	j.lru, _ = simplelru.NewLRU[string, *jwksEntry](jwksCacheEntries, func(_ string, e *jwksEntry) { j.bytes -= len(e.body) })
	return j
}

type jwkSet struct {
	Keys []JWK `json:"keys"`
}

// JWKS returns the JSON JWK Set (RFC 7517) of the project's active keys,
// and false when the project has no keys at all. The document is cached
// until a key changes (on this node or, through the store's change feed,
// on another), and a project the registry index does not know is answered
// without reading the store, so that clients cannot drive store load.
func (v *Verifier) JWKS(ctx context.Context, project string) ([]byte, bool, error) {
	if !ValidProject(project) {
		return nil, false, nil
	}
	c := v.keys
	if !c.reg.mayHaveProject(project) {
		return nil, false, nil
	}
	ep := c.epoch.Load()
	j := v.jwks
	j.mu.Lock()
	if e, ok := j.lru.Get(project); ok && e.epoch == ep {
		j.mu.Unlock()
		return e.body, e.body != nil, nil
	}
	j.mu.Unlock()
	keys, err := v.store.List(ctx, project)
	if err != nil {
		return nil, false, err
	}
	var body []byte
	if len(keys) > 0 {
		set := jwkSet{Keys: make([]JWK, 0, len(keys))}
		for _, k := range keys {
			if k.Status == StatusActive && k.Public != nil {
				set.Keys = append(set.Keys, JWKOf(k.Public, k.KID))
			}
		}
		if body, err = json.Marshal(set); err != nil {
			return nil, false, err
		}
		c.reg.addProject(project)
	}
	if c.epoch.Load() == ep && len(body) <= jwksCacheBytes/16 {
		j.mu.Lock()
		// Remove the stale document first: Add over it would replace it
		// without the eviction callback, leaving its bytes counted.
		j.lru.Remove(project)
		j.lru.Add(project, &jwksEntry{epoch: ep, body: body})
		j.bytes += len(body)
		for j.bytes > jwksCacheBytes && j.lru.Len() > 0 {
			j.lru.RemoveOldest()
		}
		j.mu.Unlock()
	}
	return body, body != nil, nil
}

// Ready returns a channel that is closed once the registry index is loaded
// and the key cache warmed with the most recently used keys (at once for a
// store that cannot be indexed). The Verifier serves before that, reading
// the store for keys it has not cached.
func (v *Verifier) Ready() <-chan struct{} { return v.keys.reg.readyCh }

// LastLoad reports on the last load of the registry index.
func (v *Verifier) LastLoad() LoadReport {
	r := &v.keys.reg
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.last
}

// Cached reports whether the key of kid is held, prepared, in the key
// cache (its next verify reads no store).
func (v *Verifier) Cached(kid string) bool { return v.keys.peek(kid) != nil }
