package engine_test

import (
	"context"
	"testing"
	"time"

	"github.com/jwtgate/jwtgate/engine"
	et "github.com/jwtgate/jwtgate/engine/enginetest"
)

// invalidatingStore invalidates the kid while the Verifier loads it, the
// way a change notification from another node can arrive during a load.
type invalidatingStore struct {
	*engine.MemoryStore
	v *engine.Verifier
}

func (s *invalidatingStore) Get(ctx context.Context, kid string) (*engine.Key, error) {
	if s.v != nil {
		s.v.Invalidate(kid)
	}
	return s.MemoryStore.Get(ctx, kid)
}

// TestUsageOfUncachedEntryIsFlushed: a key entry whose load was overtaken
// by an invalidation serves the verify but is not cached; the verification
// it counted must still reach the store (the rotation guardrail and
// last_used_at depend on it).
func TestUsageOfUncachedEntryIsFlushed(t *testing.T) {
	st := &invalidatingStore{MemoryStore: engine.NewMemoryStore()}
	v, err := engine.New(st, engine.WithClock(func() time.Time { return testNow }), engine.WithTokenCacheSize(0))
	if err != nil {
		t.Fatal(err)
	}
	priv := et.Key("rsa2048-a")
	ctx := context.Background()
	if _, err := v.AddKey(ctx, &engine.Key{KID: "k1", Project: "myapp", Public: &priv.PublicKey}); err != nil {
		t.Fatal(err)
	}
	st.v = v
	tok := et.SignRS256(priv, et.Header("k1"), validClaims())
	for range 3 {
		if _, err := v.Verify([]byte(tok)); err != nil {
			t.Fatal(err)
		}
	}
	if err := v.FlushUsage(ctx); err != nil {
		t.Fatal(err)
	}
	k, err := st.MemoryStore.Get(ctx, "k1")
	if err != nil {
		t.Fatal(err)
	}
	if k.VerifiedCount != 3 || !k.LastUsedAt.Equal(testNow) {
		t.Fatalf("stored usage: count %d, last used %v; want 3 at %v", k.VerifiedCount, k.LastUsedAt, testNow)
	}
}
