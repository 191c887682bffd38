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

	"github.com/jwtgate/jwtgate/engine/internal/rsaverify"
)

const usageStripes = 8 // power of two

type paddedCounter struct {
	n atomic.Uint64
	_ [56]byte
}

// keyEntry is a key ready to verify with: everything per-key (parsing,
// policy, precomputation) is done once, when it enters the cache. It is
// immutable but for revoked and the usage counters.
//
// It is kept small, since a busy tier holds a hundred thousand of them: the
// usage count is one word until the key is hot (hotAfter verifies between
// two drains), and only then gets counters striped over cache lines, so
// that cores verifying with one key do not contend on one line.
type keyEntry struct {
	kid, project string
	created      time.Time // with kid and project, names the registration
	active       bool
	sig          sigKey
	sigLen       int // modulus size in bytes: the signature's exact length
	sigB64Len    int // its base64url length
	size         int // bytes accounted in the key cache (entrySize)

	// revoked is set when the entry leaves the cache (invalidation or
	// eviction); token-cache entries that point to it stop hitting.
	revoked  atomic.Bool
	lastUsed atomic.Int64  // unix seconds; 0 = not since last flush
	n        atomic.Uint64 // usage while the key is not hot
	stripes  atomic.Pointer[[usageStripes]paddedCounter]
}

// hotAfter is the number of verifies between two usage drains (one flush
// interval) after which a key gets striped counters.
const hotAfter = 1024

func newKeyEntry(k *Key) (*keyEntry, error) {
	if k == nil || k.Public == nil {
		return nil, errors.New("nil key")
	}
	sig, err := newSigKey(k.Public)
	if err != nil {
		return nil, err
	}
	size := (k.Public.N.BitLen() + 7) / 8
	e := &keyEntry{
		kid: k.KID, project: k.Project, created: k.CreatedAt, active: k.Status == StatusActive,
		sig: sig, sigLen: size, sigB64Len: base64.RawURLEncoding.EncodedLen(size),
	}
	e.size = entrySize(e)
	return e, nil
}

// Memory accounting of a cached key (see entrySize; TestKeyCacheBytesPerKey
// checks the estimate against the heap).
const (
	entryStructBytes = int(unsafe.Sizeof(keyEntry{}))
	// lruNodeBytes is the LRU's list element and map slot for one entry.
	lruNodeBytes = 112
	// knownBytes is one kid in the registry index (a 64-bit hash in a map).
	knownBytes = 16
)

// entrySize estimates the heap bytes a cached entry holds: the entry, its
// strings, the prepared key (two modulus-sized limb vectors with the
// precomputed verifier, which shares its third per modulus size, or
// crypto/rsa's own form) and the LRU's node.
func entrySize(e *keyEntry) int {
	n := roundAlloc(entryStructBytes) + roundAlloc(len(e.kid))*2 + roundAlloc(len(e.project)) + lruNodeBytes
	limbs := roundAlloc((e.sigLen + 7) / 8 * 8)
	if e.sig.fast != nil {
		n += 2*limbs + 112
	} else {
		n += 2*limbs + 64 // *rsa.PublicKey and its big.Int
	}
	return n
}

// roundAlloc rounds n up to the allocator's size class (closely enough:
// 16-byte steps up to 256, then 64).
func roundAlloc(n int) int {
	if n <= 0 {
		return 0
	}
	if n <= 256 {
		return (n + 15) &^ 15
	}
	return (n + 63) &^ 63
}

// used counts one verification. stripe spreads concurrent callers over
// cache lines once the key is hot; any value works.
func (e *keyEntry) used(nowSec int64, stripe uint) {
	if s := e.stripes.Load(); s != nil {
		s[stripe&(usageStripes-1)].n.Add(1)
	} else if e.n.Add(1) >= hotAfter {
		e.stripes.CompareAndSwap(nil, new([usageStripes]paddedCounter))
	}
	if e.lastUsed.Load() < nowSec {
		e.lastUsed.Store(nowSec)
	}
}

// drain takes the counts accumulated since the last drain.
func (e *keyEntry) drain() (n uint64, last int64) {
	n = e.n.Swap(0)
	if s := e.stripes.Load(); s != nil {
		for i := range s {
			n += s[i].n.Swap(0)
		}
	}
	return n, e.lastUsed.Load()
}

// pending sums the counts not yet drained.
func (e *keyEntry) pending() (n uint64, last int64) {
	n = e.n.Load()
	if s := e.stripes.Load(); s != nil {
		for i := range s {
			n += s[i].n.Load()
		}
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
	bytes   int                           // sum of the cached entries' size
	neg     *simplelru.LRU[string, int64] // kid -> expiry (unix nanos)
	flights map[string]*flight
	// known holds the hashes of the kids that may be registered (see
	// registry.go); authoritative only while keyCache.indexed is set.
	known  map[uint64]struct{}
	fresh  map[uint64]struct{} // kids marked known while an index load runs (a set: a kid read again adds nothing)
	hits   uint64
	misses uint64
	loads  uint64 // store reads
	_      [64]byte
}

// keyCache is a sharded LRU of keyEntries by kid, bounded in bytes (and
// optionally in count), with an index of the registered kids, a bounded
// negative cache for stores that cannot be indexed, and one store load per
// kid at a time.
type keyCache struct {
	shards   []keyShard
	mask     uint64
	seed     maphash.Seed
	epoch    atomic.Uint64 // bumped by every invalidation
	store    KeyStore
	timeout  time.Duration
	negTTL   int64
	maxBytes int // the byte bound; per shard maxBytes/len(shards)
	perShard int
	maxKeys  int // the count bound, 0 for none

	reg registry

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

// keyCacheShards picks the shard count: up to 64, with room for at least
// 64 typical entries in each shard's byte budget.
func keyCacheShards(maxBytes int) int {
	n := 1
	for n < 64 && n*2*64*typicalEntryBytes <= maxBytes {
		n <<= 1
	}
	return n
}

// typicalEntryBytes is entrySize of a 2048-bit key with a 22-byte kid and a
// short project, the unit the defaults are sized in.
var typicalEntryBytes = entrySize(&keyEntry{kid: "0123456789abcdefghijkl", project: "project-x", sigLen: 256, sig: sigKey{fast: new(rsaverify.PublicKey)}})

func newKeyCache(store KeyStore, maxKeys, maxBytes, negSize int, negTTL, timeout time.Duration) *keyCache {
	n := keyCacheShards(maxBytes)
	c := &keyCache{
		shards: make([]keyShard, n), mask: uint64(n - 1), seed: maphash.MakeSeed(),
		store: store, timeout: timeout, negTTL: int64(negTTL),
		maxBytes: maxBytes, perShard: maxBytes / n, maxKeys: maxKeys,
		pending: make(map[usageID]Usage),
	}
	perCount := 1 << 30
	if maxKeys > 0 {
		perCount = max((maxKeys+n-1)/n, 1)
	}
	negPer := max((negSize+n-1)/n, 1)
	for i := range c.shards {
		s := &c.shards[i]
		s.lru, _ = simplelru.NewLRU[string, *keyEntry](perCount, func(_ string, e *keyEntry) {
			s.bytes -= e.size
			c.onEvict(e)
		})
		s.neg, _ = simplelru.NewLRU[string, int64](negPer, nil)
		s.flights = make(map[string]*flight)
		s.known = make(map[uint64]struct{})
	}
	c.reg.init(c)
	return c
}

// add caches e in sh (locked), evicting the coldest entries of the shard
// beyond its byte budget. An entry larger than the whole budget is not
// cached.
func (c *keyCache) add(sh *keyShard, k string, e *keyEntry) {
	if e.size > c.perShard {
		e.revoked.Store(true)
		return
	}
	if old, ok := sh.lru.Peek(k); ok {
		if old == e {
			return
		}
		// Add would replace it without onEvict: evict it first, so that
		// it is revoked, its usage kept and its bytes uncounted.
		sh.lru.Remove(k)
	}
	sh.lru.Add(k, e) // evicts (onEvict) one past the count bound
	sh.bytes += e.size
	for sh.bytes > c.perShard {
		if _, _, ok := sh.lru.RemoveOldest(); !ok {
			break
		}
	}
}

// onEvict runs under the shard lock whenever an entry leaves the LRU.
func (c *keyCache) onEvict(e *keyEntry) {
	e.revoked.Store(true)
	c.salvage(e)
}

// salvage moves the counts of an entry that is not (or no longer) in the
// LRU to the pending usage: drainUsage only visits cached entries, so usage
// counted on an entry born revoked (its load was overtaken by an
// invalidation) or used after its eviction would otherwise never be
// flushed, and the key's last_used_at would miss verifications.
func (c *keyCache) salvage(e *keyEntry) {
	n, last := e.drain()
	if n == 0 {
		return
	}
	c.pendingMu.Lock()
	c.addPendingLocked(e.usage(n, last))
	c.pendingMu.Unlock()
}

func (c *keyCache) hash(kid []byte) uint64 { return maphash.Bytes(c.seed, kid) }

func (c *keyCache) shardOf(h uint64) *keyShard { return &c.shards[h&c.mask] }

func (c *keyCache) shard(kid []byte) *keyShard { return c.shardOf(c.hash(kid)) }

// get returns the entry for kid, nil when no such key exists, or errStore.
func (c *keyCache) get(kid []byte, nowNano int64) (*keyEntry, error) {
	h := c.hash(kid)
	sh := c.shardOf(h)
	sh.mu.Lock()
	if e, ok := sh.lru.Get(unsafeString(kid)); ok {
		sh.hits++
		sh.mu.Unlock()
		return e, nil
	}
	if c.reg.indexed.Load() {
		// The index knows every registered kid: an unknown one is answered
		// without asking the store.
		if _, ok := sh.known[h]; !ok {
			sh.hits++
			sh.mu.Unlock()
			return nil, nil
		}
	} else if exp, ok := sh.neg.Peek(unsafeString(kid)); ok {
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
	sh.loads++
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
			c.add(sh, k, f.e)
			c.markKnown(sh, h)
		} else {
			// Not registered (any more): forget it in the index, and
			// remember it in the negative cache for when there is none.
			delete(sh.known, h)
			if c.negTTL > 0 {
				sh.neg.Add(k, nowNano+c.negTTL)
			}
		}
	} else if f.e != nil {
		// Not cached: an invalidation may have overtaken the load. The
		// entry still serves the verifies that began before it, but is born
		// revoked so that no token cached with it is ever answered.
		f.e.revoked.Store(true)
	}
	sh.mu.Unlock()
	if f.e != nil {
		c.reg.addProject(f.e.project)
	}
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

// invalidate drops kid from the cache and the negative cache, and marks it
// as possibly registered in the index (a change was made to it: it may be
// new). Verifies that start after it returns reload the key from the store.
// project is the key's project when the caller knows it (its own change),
// else "": a kid new to the index is then read once in the background to
// learn its project.
func (c *keyCache) invalidate(kid, project string) {
	c.epoch.Add(1)
	h := c.hash([]byte(kid))
	sh := c.shardOf(h)
	sh.mu.Lock()
	sh.lru.Remove(kid) // onEvict marks it revoked
	sh.neg.Remove(kid)
	_, wasKnown := sh.known[h]
	c.markKnown(sh, h)
	sh.mu.Unlock()
	switch {
	case project != "":
		c.reg.addProject(project)
	case !wasKnown && c.reg.scanner != nil:
		c.reg.resolve(kid)
	}
}

// forget drops kid from the cache and the index: it was deleted here.
func (c *keyCache) forget(kid string) {
	c.epoch.Add(1)
	h := c.hash([]byte(kid))
	sh := c.shardOf(h)
	sh.mu.Lock()
	sh.lru.Remove(kid)
	sh.neg.Remove(kid)
	delete(sh.known, h)
	sh.mu.Unlock()
}

// markKnown records (sh locked) that the kid of hash h may be registered.
func (c *keyCache) markKnown(sh *keyShard, h uint64) {
	sh.known[h] = struct{}{}
	if c.reg.loading.Load() {
		if sh.fresh == nil {
			sh.fresh = make(map[uint64]struct{})
		}
		sh.fresh[h] = struct{}{}
	}
}

// invalidateAll drops every cached key and unknown kid, and reloads the
// index (until it is loaded again, kids not cached are read from the
// store).
func (c *keyCache) invalidateAll() {
	c.epoch.Add(1)
	c.reg.indexed.Store(false)
	for i := range c.shards {
		sh := &c.shards[i]
		sh.mu.Lock()
		sh.lru.Purge()
		sh.neg.Purge()
		sh.mu.Unlock()
	}
	c.reg.reload()
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
		en, el := e.pending()
		n += en
		last = max(last, el)
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
	KeyHits, KeyMisses    uint64
	KeyLoads              uint64 // reads of a key from the store
	KeySize, NegativeSize int
	KeyBytes, KeyMaxBytes int // estimated heap bytes of the cached keys, and the bound
	// IndexedKIDs is the number of kids in the registry index, and
	// IndexReady whether it is complete (unknown kids are then refused
	// without a store read).
	IndexedKIDs            int
	IndexReady             bool
	TokenHits, TokenMisses uint64
	TokenSize              int
	TokenBytes             int64 // memory held by the token cache's entries
}

func (c *keyCache) stats(s *CacheStats) {
	s.KeyMaxBytes = c.maxBytes
	s.IndexReady = c.reg.indexed.Load()
	for i := range c.shards {
		sh := &c.shards[i]
		sh.mu.Lock()
		s.KeyHits += sh.hits
		s.KeyMisses += sh.misses
		s.KeyLoads += sh.loads
		s.KeySize += sh.lru.Len()
		s.KeyBytes += sh.bytes
		s.NegativeSize += sh.neg.Len()
		s.IndexedKIDs += len(sh.known)
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
