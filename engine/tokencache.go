package engine

import (
	"hash/maphash"
	"sync"
	"sync/atomic"
)

// tokenEntry is a token that verified. Only exp can make it invalid later
// (nbf and iat only become easier to meet as time passes), so a hit checks
// exp and that its key entry has not been revoked. Immutable once published.
type tokenEntry struct {
	hash     uint64
	token    []byte // the whole token: a hit compares every byte
	key      *keyEntry
	payload  []byte
	members  []member
	subject  member
	hasSub   bool
	exp, iat int64 // floors
	nbf      int64
}

// tokenProbe is how many slots a token may occupy from its home slot.
const tokenProbe = 8

type tokenShard struct {
	mu    sync.Mutex // writers only; readers are lock-free
	slots []atomic.Pointer[tokenEntry]
	mask  uint64
	clock uint64 // victim choice when a probe window is full
	size  int
	_     [64]byte
}

// tokenCache is a bounded, sharded table from the whole token to its
// verified result. Lookups take no lock and write no shared memory, so the
// cached path scales with cores; inserts and purges lock one shard. Entries
// are found by a seeded hash and confirmed by comparing the whole token, so
// no other token can ever hit an entry.
type tokenCache struct {
	shards []tokenShard
	mask   uint64
	seed   maphash.Seed
	hits   [usageStripes]paddedCounter
	misses [usageStripes]paddedCounter
}

func newTokenCache(size int) *tokenCache {
	if size <= 0 {
		return nil
	}
	n := 1
	for n < 64 && n*64 < size {
		n <<= 1
	}
	per := 1
	for per*n < size {
		per <<= 1
	}
	c := &tokenCache{shards: make([]tokenShard, n), mask: uint64(n - 1), seed: maphash.MakeSeed()}
	for i := range c.shards {
		c.shards[i].slots = make([]atomic.Pointer[tokenEntry], per)
		c.shards[i].mask = uint64(per - 1)
	}
	return c
}

// tokenHashTail is how many trailing bytes of a token are hashed. They are
// the end of the signature, random for any signed token; tokens built to
// share a tail only land in the same probe window (a hit still compares the
// whole token), so hashing a fixed tail keeps lookups O(1) in token size.
const tokenHashTail = 32

func (c *tokenCache) hash(token []byte) uint64 {
	return maphash.Bytes(c.seed, token[len(token)-min(len(token), tokenHashTail):]) ^ uint64(len(token))*0x9E3779B97F4A7C15
}

func (c *tokenCache) get(token []byte) (*tokenEntry, uint64) {
	h := c.hash(token)
	sh := &c.shards[h&c.mask]
	home := h >> 32
	for i := uint64(0); i < tokenProbe; i++ {
		e := sh.slots[(home+i)&sh.mask].Load()
		if e != nil && e.hash == h && string(e.token) == string(token) {
			return e, h
		}
	}
	return nil, h
}

// count records whether a lookup was answered from the cache.
func (c *tokenCache) count(hit bool, stripe uint) {
	if hit {
		c.hits[stripe&(usageStripes-1)].n.Add(1)
	} else {
		c.misses[stripe&(usageStripes-1)].n.Add(1)
	}
}

func (c *tokenCache) put(h uint64, e *tokenEntry) {
	e.hash = h
	sh := &c.shards[h&c.mask]
	home := h >> 32
	sh.mu.Lock()
	defer sh.mu.Unlock()
	free := -1
	for i := uint64(0); i < tokenProbe; i++ {
		idx := (home + i) & sh.mask
		old := sh.slots[idx].Load()
		if old != nil && old.hash == h {
			sh.slots[idx].Store(e)
			return
		}
		if old == nil && free < 0 {
			free = int(idx)
		}
	}
	if free < 0 {
		sh.clock++
		free = int((home + sh.clock%tokenProbe) & sh.mask)
	} else {
		sh.size++
	}
	sh.slots[free].Store(e)
}

func (c *tokenCache) purge() {
	for i := range c.shards {
		sh := &c.shards[i]
		sh.mu.Lock()
		for j := range sh.slots {
			sh.slots[j].Store(nil)
		}
		sh.size = 0
		sh.mu.Unlock()
	}
}

func (c *tokenCache) stats(s *CacheStats) {
	for i := range c.hits {
		s.TokenHits += c.hits[i].n.Load()
		s.TokenMisses += c.misses[i].n.Load()
	}
	for i := range c.shards {
		sh := &c.shards[i]
		sh.mu.Lock()
		s.TokenSize += sh.size
		sh.mu.Unlock()
	}
}
