package engine

import (
	"testing"
	"time"

	"github.com/jwtgate/jwtgate/engine/enginetest"
)

// TestKeyCacheAddReplacesEntry: an entry cached over another of the same
// kid (a load racing the warm-up) evicts the one it replaces: it is
// revoked, so no token cached with it is answered again, and its bytes
// leave the shard's count.
func TestKeyCacheAddReplacesEntry(t *testing.T) {
	c := newKeyCache(NewMemoryStore(), 0, 1<<20, 16, time.Second, time.Second)
	k := &Key{KID: "k1", Project: "p", Status: StatusActive, Public: &enginetest.Key("rsa2048-a").PublicKey}
	e1, err := newKeyEntry(k)
	if err != nil {
		t.Fatal(err)
	}
	e2, err := newKeyEntry(k)
	if err != nil {
		t.Fatal(err)
	}
	sh := c.shard([]byte(k.KID))
	sh.mu.Lock()
	c.add(sh, k.KID, e1)
	c.add(sh, k.KID, e2)
	got, _ := sh.lru.Peek(k.KID)
	bytes := sh.bytes
	sh.mu.Unlock()
	if got != e2 || !e1.revoked.Load() || e2.revoked.Load() {
		t.Fatalf("cached the new entry: %v; old revoked %v, new revoked %v", got == e2, e1.revoked.Load(), e2.revoked.Load())
	}
	if bytes != e2.size {
		t.Fatalf("shard counts %d bytes, holds one entry of %d", bytes, e2.size)
	}
}
