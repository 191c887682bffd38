package engine

import (
	"hash/maphash"
	"sync"
)

// tokenEntry is a token that verified. Only exp can make it invalid later
// (nbf and iat only become easier to meet as time passes), so a hit checks
// exp and that its key entry has not been revoked.
type tokenEntry struct {
	token    []byte // the whole token: a hit compares every byte
	key      *keyEntry
	payload  []byte
	members  []member
	subject  member
	hasSub   bool
	exp, iat int64 // floors
	nbf      int64
	expCeil  int64
}

type tokenShard struct {
	mu     sync.Mutex
	m      map[uint64]*tokenEntry
	ring   []uint64 // insertion order, for FIFO eviction
	next   int
	hits   uint64
	misses uint64
	_      [64]byte
}

// tokenCache is a sharded, bounded map from the whole token to its verified
// result. It is keyed by a seeded hash and confirmed by comparing the whole
// token, so no other token can ever hit an entry.
type tokenCache struct {
	shards []tokenShard
	mask   uint64
	seed   maphash.Seed
}

func newTokenCache(size int) *tokenCache {
	if size <= 0 {
		return nil
	}
	n := 1
	for n < 64 && n*16 < size {
		n <<= 1
	}
	per := max((size+n-1)/n, 1)
	c := &tokenCache{shards: make([]tokenShard, n), mask: uint64(n - 1), seed: maphash.MakeSeed()}
	for i := range c.shards {
		c.shards[i].m = make(map[uint64]*tokenEntry, per)
		c.shards[i].ring = make([]uint64, per)
	}
	return c
}

func (c *tokenCache) get(token []byte) (*tokenEntry, uint64) {
	h := maphash.Bytes(c.seed, token)
	sh := &c.shards[h&c.mask]
	sh.mu.Lock()
	e := sh.m[h]
	if e != nil && string(e.token) == string(token) {
		sh.hits++
		sh.mu.Unlock()
		return e, h
	}
	sh.misses++
	sh.mu.Unlock()
	return nil, h
}

func (c *tokenCache) put(h uint64, e *tokenEntry) {
	sh := &c.shards[h&c.mask]
	sh.mu.Lock()
	if _, ok := sh.m[h]; !ok {
		if old := sh.ring[sh.next]; old != 0 {
			delete(sh.m, old)
		}
		sh.ring[sh.next] = h
		sh.next = (sh.next + 1) % len(sh.ring)
	}
	sh.m[h] = e
	sh.mu.Unlock()
}

func (c *tokenCache) purge() {
	for i := range c.shards {
		sh := &c.shards[i]
		sh.mu.Lock()
		clear(sh.m)
		clear(sh.ring)
		sh.next = 0
		sh.mu.Unlock()
	}
}

func (c *tokenCache) stats(s *CacheStats) {
	for i := range c.shards {
		sh := &c.shards[i]
		sh.mu.Lock()
		s.TokenHits += sh.hits
		s.TokenMisses += sh.misses
		s.TokenSize += len(sh.m)
		sh.mu.Unlock()
	}
}
