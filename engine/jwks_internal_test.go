package engine

import (
	"context"
	"testing"

	"github.com/jwtgate/jwtgate/engine/enginetest"
)

// TestJWKSCacheBytesAfterKeyChanges: a project's JWKS cached again after a
// key change replaces the stale document, and the byte count the cache
// bounds itself by must drop the stale one's bytes. Counted twice, the
// count drifts up with every key change until the cache evicts everything,
// and past the bound with nothing left to evict the eviction loop never
// ends.
func TestJWKSCacheBytesAfterKeyChanges(t *testing.T) {
	v, err := New(NewMemoryStore())
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if _, err := v.AddKey(ctx, &Key{Project: "p", KID: "k1", Public: &enginetest.Key("rsa2048-a").PublicKey}); err != nil {
		t.Fatal(err)
	}
	var one int
	for i := range 5 {
		body, found, err := v.JWKS(ctx, "p")
		if err != nil || !found {
			t.Fatalf("JWKS: found %v, err %v", found, err)
		}
		one = len(body)
		if i < 4 {
			v.Invalidate("some-other-kid") // a key change: the cached document is stale
		}
	}
	j := v.jwks
	j.mu.Lock()
	defer j.mu.Unlock()
	sum := 0
	for _, e := range j.lru.Values() {
		sum += len(e.body)
	}
	if j.bytes != sum || sum != one {
		t.Fatalf("cache counts %d bytes, holds %d (one document of %d bytes)", j.bytes, sum, one)
	}
}
