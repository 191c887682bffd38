package engine

import (
	"context"
	"encoding/base64"
	"errors"
	"hash/maphash"
	"sync"
	"sync/atomic"
	"time"
	"unsafe"

	"github.com/hashicorp/golang-lru/v2/simplelru"
)

const usageStripes = 8 // power of two

type paddedCounter struct {
	n atomic.Uint64
	_ [56]byte
}

// keyEntry is a key ready to verify with: everything per-key (parsing,
// policy, precomputation) is done once, when it enters the cache. It is
// immutable but for revoked and the usage counters.
type keyEntry struct {
	kid, project string
	created      time.Time // with kid and project, names the registration
	active       bool
	sig          sigKey
	sigLen       int // modulus size in bytes: the signature's exact length
	sigB64Len    int // its base64url length

	// revoked is set when the entry leaves the cache (invalidation or
	// eviction); token-cache entries that point to it stop hitting.
	revoked atomic.Bool
	_       [63]byte

	lastUsed atomic.Int64 // unix seconds; 0 = not since last flush
	_        [56]byte
	counts   [usageStripes]paddedCounter
}

func newKeyEntry(k *Key) (*keyEntry, error) {
	if k == nil || k.Public == nil {
		return nil, errors.New("nil key")
	}
	sig, err := newSigKey(k.Public)
	if err != nil {
		return nil, err
	}
	size := (k.Public.N.BitLen() + 7) / 8
	return &keyEntry{
		kid: k.KID, project: k.Project, created: k.CreatedAt, active: k.Status == StatusActive,
		sig: sig, sigLen: size, sigB64Len: base64.RawURLEncoding.EncodedLen(size),
	}, nil
}

// used counts one verification. stripe spreads concurrent callers over
// cache lines; any value works.
func (e *keyEntry) used(nowSec int64, stripe uint) {
	e.counts[stripe&(usageStripes-1)].n.Add(1)
	if e.lastUsed.Load() < nowSec {
		e.lastUsed.Store(nowSec)
	}
}

// drain takes the counts accumulated since the last drain.
func (e *keyEntry) drain() (n uint64, last int64) {
	for i := range e.counts {
		n += e.counts[i].n.Swap(0)
	}
	return n, e.lastUsed.Load()
}

// unsafeString views b as a string for a map lookup that does not keep it.
func unsafeString(b []byte) string { return unsafe.String(unsafe.SliceData(b), len(b)) }

type flight struct {
	epoch uint64
	done  chan struct{}
	e     *keyEntry
	err   error
}

type keyShard struct {
	mu      sync.Mutex
	lru     *simplelru.LRU[string, *keyEntry]
	neg     *simplelru.LRU[string, int64] // kid -> expiry (unix nanos)
	flights map[string]*flight
	hits    uint64
	misses  uint64
	_       [64]byte
}

// keyCache is a sharded LRU of keyEntries by kid, with a bounded negative
// cache and one store load per kid at a time.
type keyCache struct {
	shards  []keyShard
	mask    uint64
	seed    maphash.Seed
	epoch   atomic.Uint64 // bumped by every invalidation
	store   KeyStore
	timeout time.Duration
	negTTL  int64

	pendingMu sync.Mutex
	pending   map[usageID]Usage // usage of entries that left the cache
}

// usageID names one registration of a kid: usage is counted per
// registration, so that a kid deleted and registered again starts afresh.
type usageID struct {
	kid, project string
	created      int64 // unix nanos
}

func idOf(u Usage) usageID {
	return usageID{u.KID, u.Project, u.Created.UnixNano()}
}

func (e *keyEntry) usage(n uint64, last int64) Usage {
	return Usage{KID: e.kid, Project: e.project, Created: e.created, Count: n, LastUsed: time.Unix(last, 0).UTC()}
}

// maxPendingUsage bounds the usage remembered for evicted keys between two
// drains; beyond it, counts of further evicted keys are dropped.
const maxPendingUsage = 1 << 16

var errStore = errors.New("key store lookup failed")

func newKeyCache(store KeyStore, size, negSize int, negTTL, timeout time.Duration) *keyCache {
	n := 1
	for n < 64 && n*4 < size {
		n <<= 1
	}
	c := &keyCache{
		shards: make([]keyShard, n), mask: uint64(n - 1), seed: maphash.MakeSeed(),
		store: store, timeout: timeout, negTTL: int64(negTTL),
		pending: make(map[usageID]Usage),
	}
	per := (size + n - 1) / n
	negPer := max((negSize+n-1)/n, 1)
	for i := range c.shards {
		s := &c.shards[i]
		s.lru, _ = simplelru.NewLRU[string, *keyEntry](per, c.onEvict)
		s.neg, _ = simplelru.NewLRU[string, int64](negPer, nil)
		s.flights = make(map[string]*flight)
	}
	return c
}

// onEvict runs under the shard lock whenever an entry leaves the LRU.
func (c *keyCache) onEvict(_ string, e *keyEntry) {
	e.revoked.Store(true)
	n, last := e.drain()
	if n == 0 {
		return
	}
	c.pendingMu.Lock()
	c.addPendingLocked(e.usage(n, last))
	c.pendingMu.Unlock()
}

func (c *keyCache) shard(kid []byte) *keyShard {
	return &c.shards[maphash.Bytes(c.seed, kid)&c.mask]
}

// get returns the entry for kid, nil when no such key exists, or errStore.
func (c *keyCache) get(kid []byte, nowNano int64) (*keyEntry, error) {
	sh := c.shard(kid)
	sh.mu.Lock()
	if e, ok := sh.lru.Get(unsafeString(kid)); ok {
		sh.hits++
		sh.mu.Unlock()
		return e, nil
	}
	if exp, ok := sh.neg.Peek(unsafeString(kid)); ok {
		if nowNano < exp {
			sh.hits++
			sh.mu.Unlock()
			return nil, nil
		}
		sh.neg.Remove(unsafeString(kid))
	}
	sh.misses++
	ep := c.epoch.Load()
	if f, ok := sh.flights[unsafeString(kid)]; ok && f.epoch == ep {
		sh.mu.Unlock()
		<-f.done
		return f.e, f.err
	}
	k := string(kid)
	f := &flight{epoch: ep, done: make(chan struct{})}
	sh.flights[k] = f
	sh.mu.Unlock()

	f.e, f.err = c.load(k)

	sh.mu.Lock()
	if sh.flights[k] == f {
		delete(sh.flights, k)
	}
	// Cache only if no invalidation happened since the load began: the
	// store may have answered with the state from before it.
	if f.err == nil && c.epoch.Load() == ep {
		if f.e != nil {
			sh.lru.Add(k, f.e)
		} else if c.negTTL > 0 {
			sh.neg.Add(k, nowNano+c.negTTL)
		}
	} else if f.e != nil {
		// Not cached: an invalidation may have overtaken the load. The
		// entry still serves the verifies that began before it, but is born
		// revoked so that no token cached with it is ever answered.
		f.e.revoked.Store(true)
	}
	sh.mu.Unlock()
	close(f.done)
	return f.e, f.err
}

func (c *keyCache) load(kid string) (e *keyEntry, err error) {
	defer func() {
		if r := recover(); r != nil { // a store must not take the verifier down
			e, err = nil, errStore
		}
	}()
	ctx, cancel := context.WithTimeout(context.Background(), c.timeout)
	defer cancel()
	k, err := c.store.Get(ctx, kid)
	if errors.Is(err, ErrKeyNotFound) {
		return nil, nil
	}
	if err != nil || k == nil || k.KID != kid {
		return nil, errStore
	}
	e, err = newKeyEntry(k)
	if err != nil {
		return nil, errStore
	}
	return e, nil
}

// invalidate drops kid from the cache and the negative cache. Verifies that
// start after it returns reload the key from the store.
func (c *keyCache) invalidate(kid string) {
	c.epoch.Add(1)
	sh := c.shard([]byte(kid))
	sh.mu.Lock()
	sh.lru.Remove(kid) // onEvict marks it revoked
	sh.neg.Remove(kid)
	sh.mu.Unlock()
}

func (c *keyCache) invalidateAll() {
	c.epoch.Add(1)
	for i := range c.shards {
		sh := &c.shards[i]
		sh.mu.Lock()
		sh.lru.Purge()
		sh.neg.Purge()
		sh.mu.Unlock()
	}
}

// peek returns the cached entry for kid without loading it.
func (c *keyCache) peek(kid string) *keyEntry {
	sh := c.shard([]byte(kid))
	sh.mu.Lock()
	e, _ := sh.lru.Peek(kid)
	sh.mu.Unlock()
	return e
}

// drainUsage collects and resets the usage counters of cached and evicted
// entries.
func (c *keyCache) drainUsage() []Usage {
	var out []Usage
	add := func(e *keyEntry) {
		if n, last := e.drain(); n > 0 {
			out = append(out, e.usage(n, last))
		}
	}
	c.pendingMu.Lock()
	for _, u := range c.pending {
		out = append(out, u)
	}
	clear(c.pending)
	c.pendingMu.Unlock()
	for i := range c.shards {
		sh := &c.shards[i]
		sh.mu.Lock()
		vals := sh.lru.Values()
		sh.mu.Unlock()
		for _, e := range vals {
			add(e)
		}
	}
	return mergeUsage(out)
}

// pendingUsage sums the not yet drained usage of k's registration.
func (c *keyCache) pendingUsage(k *Key) (n uint64, last int64) {
	sum := func(e *keyEntry) {
		for i := range e.counts {
			n += e.counts[i].n.Load()
		}
		last = max(last, e.lastUsed.Load())
	}
	id := usageID{k.KID, k.Project, k.CreatedAt.UnixNano()}
	c.pendingMu.Lock()
	if u, ok := c.pending[id]; ok {
		n += u.Count
		last = max(last, u.LastUsed.Unix())
	}
	c.pendingMu.Unlock()
	if e := c.peek(k.KID); e != nil && e.project == k.Project && e.created.Equal(k.CreatedAt) {
		sum(e)
	}
	return n, last
}

func mergeUsage(in []Usage) []Usage {
	if len(in) < 2 {
		return in
	}
	idx := make(map[usageID]int, len(in))
	out := in[:0]
	for _, u := range in {
		if i, ok := idx[idOf(u)]; ok {
			out[i].Count += u.Count
			if u.LastUsed.After(out[i].LastUsed) {
				out[i].LastUsed = u.LastUsed
			}
			continue
		}
		idx[idOf(u)] = len(out)
		out = append(out, u)
	}
	return out
}

// CacheStats are counters of the Verifier's caches.
type CacheStats struct {
	KeyHits, KeyMisses     uint64
	KeySize, NegativeSize  int
	TokenHits, TokenMisses uint64
	TokenSize              int
	TokenBytes             int64 // memory held by the token cache's entries
}

func (c *keyCache) stats(s *CacheStats) {
	for i := range c.shards {
		sh := &c.shards[i]
		sh.mu.Lock()
		s.KeyHits += sh.hits
		s.KeyMisses += sh.misses
		s.KeySize += sh.lru.Len()
		s.NegativeSize += sh.neg.Len()
		sh.mu.Unlock()
	}
}

// restoreUsage puts back usage whose flush failed.
func (c *keyCache) restoreUsage(batch []Usage) {
	c.pendingMu.Lock()
	defer c.pendingMu.Unlock()
	for _, b := range batch {
		c.addPendingLocked(b)
	}
}

// addPendingLocked adds b to the pending usage of its registration (under
// pendingMu); beyond maxPendingUsage registrations, new ones are dropped.
func (c *keyCache) addPendingLocked(b Usage) {
	id := idOf(b)
	u, ok := c.pending[id]
	if !ok && len(c.pending) >= maxPendingUsage {
		return
	}
	if !ok {
		u = Usage{KID: b.KID, Project: b.Project, Created: b.Created}
	}
	u.Count += b.Count
	if b.LastUsed.After(u.LastUsed) {
		u.LastUsed = b.LastUsed
	}
	c.pending[id] = u
}
