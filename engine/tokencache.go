package engine

import (
	"hash/maphash"
	"math"
	"sync"
	"sync/atomic"
	"unsafe"
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
	cost     int // bytes charged against the cache's bound (entryCost)
}

// entryCost is the memory an entry holds: the struct and the capacities of
// the slices it owns (the key entry is shared and counted by the key cache).
func entryCost(e *tokenEntry) int {
	return int(unsafe.Sizeof(*e)) + cap(e.token) + cap(e.payload) + cap(e.members)*int(unsafe.Sizeof(member{}))
}

// tokenProbe is how many slots a token may occupy from its home slot.
const tokenProbe = 8

type tokenShard struct {
	mu    sync.Mutex // writers only; readers are lock-free
	slots []atomic.Pointer[tokenEntry]
	mask  uint64
	clock uint64 // victim choice when a probe window is full
	hand  uint64 // next slot the byte bound evicts from
	size  int
	bytes int // sum of the entries' costs, at most budget
	_     [64]byte
}

// tokenCache is a sharded table from the whole token to its verified
// result, bounded both in entries and in bytes (each shard holds at most
// its share of the byte bound; an insert that would exceed it evicts
// entries in slot order, a clock sweep, until it fits). Lookups take no lock and write no shared memory, so the
// cached path scales with cores; inserts and purges lock one shard. Entries
// are found by a seeded hash and confirmed by comparing the whole token, so
// no other token can ever hit an entry.
type tokenCache struct {
	budget int // bytes per shard
	shards []tokenShard
	mask   uint64
	seed   maphash.Seed
	hits   [usageStripes]paddedCounter
	misses [usageStripes]paddedCounter
}

// minShardBytes is the least byte budget a shard is given while the
// cache has more than one shard: room for a few of the largest tokens.
const minShardBytes = 256 << 10

func newTokenCache(size int, maxBytes int64) *tokenCache {
	if size <= 0 || maxBytes <= 0 {
		return nil
	}
	n := 1
	for n < 64 && n*64 < size {
		n <<= 1
	}
	for n > 1 && maxBytes/int64(n) < minShardBytes {
		n >>= 1
	}
	per := 1
	for per*n < size {
		per <<= 1
	}
	c := &tokenCache{shards: make([]tokenShard, n), mask: uint64(n - 1), seed: maphash.MakeSeed()}
	c.budget = int(min(maxBytes/int64(n), math.MaxInt32))
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
	e.cost = entryCost(e)
	if e.cost > c.budget {
		return // could never fit: not cached
	}
	sh := &c.shards[h&c.mask]
	home := h >> 32
	sh.mu.Lock()
	defer sh.mu.Unlock()
	target := -1
	free := -1
	for i := uint64(0); i < tokenProbe; i++ {
		idx := (home + i) & sh.mask
		old := sh.slots[idx].Load()
		if old != nil && old.hash == h {
			target = int(idx)
			break
		}
		if old == nil && free < 0 {
			free = int(idx)
		}
	}
	if target < 0 {
		target = free
	}
	if target < 0 {
		sh.clock++
		target = int((home + sh.clock%tokenProbe) & sh.mask)
	}
	sh.evict(target)
	// Make room under the byte bound: a clock sweep over the other slots.
	// It ends within one turn, as e alone fits the budget.
	for sh.bytes+e.cost > c.budget {
		sh.hand = (sh.hand + 1) & sh.mask
		if int(sh.hand) != target {
			sh.evict(int(sh.hand))
		}
	}
	sh.slots[target].Store(e)
	sh.size++
	sh.bytes += e.cost
}

// evict empties slot idx (under sh.mu). Lookups scan a whole probe window,
// so an empty slot in it breaks no chain.
func (sh *tokenShard) evict(idx int) {
	if old := sh.slots[idx].Load(); old != nil {
		sh.slots[idx].Store(nil)
		sh.size--
		sh.bytes -= old.cost
	}
}

func (c *tokenCache) purge() {
	for i := range c.shards {
		sh := &c.shards[i]
		sh.mu.Lock()
		for j := range sh.slots {
			sh.slots[j].Store(nil)
		}
		sh.size, sh.bytes = 0, 0
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
		s.TokenBytes += int64(sh.bytes)
		sh.mu.Unlock()
	}
}
