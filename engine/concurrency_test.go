package engine_test

import (
	"context"
	"crypto/rsa"
	"fmt"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jwtgate/jwtgate/engine"
	et "github.com/jwtgate/jwtgate/engine/enginetest"
)

// TestConcurrentRotation verifies from many goroutines while keys are added,
// deactivated, reactivated and deleted. Once UpdateKey(inactive) or
// DeleteKey has returned, no verify that starts afterwards may succeed with
// that key — through the key cache or the token cache.
func TestConcurrentRotation(t *testing.T) {
	// More Ps than cores widens the interleavings (a stale-load race was
	// seen mostly with GOMAXPROCS >= 4).
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(max(4, runtime.GOMAXPROCS(0))))
	for _, tokenCache := range []int{0, 1024} {
		t.Run(fmt.Sprintf("token_cache=%d", tokenCache), func(t *testing.T) {
			testConcurrentRotation(t, tokenCache)
		})
	}
}

func testConcurrentRotation(t *testing.T, tokenCache int) {
	const (
		rounds  = 12
		workers = 8
	)
	store := engine.NewMemoryStore()
	v, err := engine.New(store, engine.WithTokenCacheSize(tokenCache), engine.WithKeyCacheSize(4),
		engine.WithClock(func() time.Time { return testNow }))
	if err != nil {
		t.Fatal(err)
	}
	privs := []*rsa.PrivateKey{et.Key("rsa2048-a"), et.Key("rsa2048-b"), et.Key("rsa2048-c")}
	type kidState struct {
		kid   string
		priv  *rsa.PrivateKey
		token []byte
		state atomic.Int64 // version<<8 | (0 absent, 1 active, 2 inactive, 3 deleted)
	}
	set := func(k *kidState, st int64) { k.state.Store((k.state.Load()>>8+1)<<8 | st) }
	kids := make([]*kidState, rounds)
	for i := range kids {
		k := &kidState{kid: fmt.Sprintf("rot-%d", i), priv: privs[i%len(privs)]}
		k.token = []byte(et.SignRS256(k.priv, et.Header(k.kid), validClaims()))
		kids[i] = k
	}
	var (
		stop       atomic.Bool
		wg         sync.WaitGroup
		violations atomic.Int64
		accepted   atomic.Int64
	)
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			c := new(engine.Claims)
			for i := w; !stop.Load(); i++ {
				k := kids[i%rounds]
				before := k.state.Load()
				err := v.VerifyInto(k.token, c)
				// A violation: accepted although, for the whole call, the key
				// was inactive or deleted (no reactivation raced with it).
				if err == nil {
					accepted.Add(1)
					if before&0xFF >= 2 && k.state.Load() == before {
						violations.Add(1)
					}
				}
			}
		}(w)
	}
	ctx := context.Background()
	inactive, active := engine.StatusInactive, engine.StatusActive
	for _, k := range kids {
		if _, err := v.AddKey(ctx, &engine.Key{KID: k.kid, Project: "myapp", Public: &k.priv.PublicKey}); err != nil {
			t.Fatal(err)
		}
		set(k, 1)
		time.Sleep(2 * time.Millisecond)
		if _, err := v.UpdateKey(ctx, "myapp", k.kid, engine.KeyUpdate{Status: &inactive}); err != nil {
			t.Fatal(err)
		}
		set(k, 2)
		time.Sleep(time.Millisecond)
		// Reactivating is allowed to verify again; mark it before the call
		// so that an accept in between is never counted as a violation.
		set(k, 1)
		if _, err := v.UpdateKey(ctx, "myapp", k.kid, engine.KeyUpdate{Status: &active}); err != nil {
			t.Fatal(err)
		}
		time.Sleep(time.Millisecond)
		if err := v.DeleteKey(ctx, "myapp", k.kid); err != nil {
			t.Fatal(err)
		}
		set(k, 3)
	}
	time.Sleep(5 * time.Millisecond)
	stop.Store(true)
	wg.Wait()
	if n := violations.Load(); n > 0 {
		t.Fatalf("%d verifies succeeded with a key after its deactivation or deletion had returned", n)
	}
	if accepted.Load() == 0 {
		t.Fatal("no verify ever succeeded: the test exercised nothing")
	}
	for _, k := range kids {
		if _, err := v.Verify(k.token); err == nil {
			t.Fatalf("deleted key %s still verifies", k.kid)
		}
	}
	t.Logf("%d accepted verifies, 0 after deactivation", accepted.Load())
}

// TestSingleFlightAndNegativeCache: many goroutines missing on one kid reach
// the store once; unknown kids are remembered; a kid registered a moment ago
// verifies at once.
func TestSingleFlightAndNegativeCache(t *testing.T) {
	inner := engine.NewMemoryStore()
	store := &countingStore{KeyStore: inner, delay: 20 * time.Millisecond}
	v, err := engine.New(store, engine.WithClock(func() time.Time { return testNow }), engine.WithTokenCacheSize(0))
	if err != nil {
		t.Fatal(err)
	}
	priv := et.Key("rsa2048-a")
	if err := inner.Create(context.Background(), &engine.Key{KID: "k1", Project: "myapp", Status: engine.StatusActive, Public: &priv.PublicKey}); err != nil {
		t.Fatal(err)
	}
	tok := []byte(et.SignRS256(priv, et.Header("k1"), validClaims()))
	var wg sync.WaitGroup
	for range 32 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, err := v.Verify(tok); err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	if n := store.gets.Load(); n != 1 {
		t.Fatalf("32 concurrent misses made %d store lookups, want 1", n)
	}

	unknown := []byte(et.SignRS256(priv, et.Header("k-new"), validClaims()))
	store.delay = 0
	for range 100 {
		if _, err := v.Verify(unknown); err != engine.ErrUnknownKID {
			t.Fatalf("err = %v, want unknown_kid", err)
		}
	}
	if n := store.gets.Load(); n != 2 {
		t.Fatalf("100 verifies of one unknown kid made %d store lookups, want 1", n-1)
	}
	if _, err := v.AddKey(context.Background(), &engine.Key{KID: "k-new", Project: "myapp", Public: &priv.PublicKey}); err != nil {
		t.Fatal(err)
	}
	if _, err := v.Verify(unknown); err != nil {
		t.Fatalf("a kid registered a moment ago: %v", err)
	}
	bad := []byte(et.SignRS256(priv, et.Header("bad kid!"), validClaims()))
	before := store.gets.Load()
	if _, err := v.Verify(bad); err != engine.ErrUnknownKID || store.gets.Load() != before {
		t.Fatalf("a kid outside the pattern: err %v, store lookups %d", err, store.gets.Load()-before)
	}
}

type countingStore struct {
	engine.KeyStore
	gets  atomic.Int64
	delay time.Duration
}

func (s *countingStore) Get(ctx context.Context, kid string) (*engine.Key, error) {
	s.gets.Add(1)
	time.Sleep(s.delay)
	return s.KeyStore.Get(ctx, kid)
}
