package engine_test

import (
	"runtime"
	"strconv"
	"strings"
	"testing"

	"github.com/jwtgate/jwtgate/engine"
	et "github.com/jwtgate/jwtgate/engine/enginetest"
)

// TestTokenCacheByteBound: a flood of distinct 8 KiB tokens, each verified
// (and so cached), keeps the token cache's bytes under its byte bound, in
// the cache's own accounting and in the heap, while the cache keeps
// caching. The entry bound (16,384 by default) alone would let these
// tokens hold some 14 KiB each, 5+ MiB for 400 of them.
func TestTokenCacheByteBound(t *testing.T) {
	const bound = 1 << 20
	f := newFixture(t, engine.WithTokenCacheBytes(bound))
	pad := strings.Repeat("x", 5600)
	toks := make([][]byte, 400)
	for i := range toks {
		toks[i] = []byte(et.SignRS256(f.priv, et.Header("k1"), with(validClaims(), "pad", pad, "jti", strconv.Itoa(i))))
		if n := len(toks[i]); n < 7<<10 || n > engine.DefaultMaxTokenBytes {
			t.Fatalf("token of %d bytes, want about 8 KiB", n)
		}
	}
	runtime.GC()
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	c := new(engine.Claims)
	for i, tok := range toks {
		if err := f.v.VerifyInto(tok, c); err != nil {
			t.Fatalf("token %d: %v", i, err)
		}
		if st := f.v.Stats(); st.TokenBytes > bound {
			t.Fatalf("after %d tokens the token cache holds %d bytes, over its bound of %d", i+1, st.TokenBytes, bound)
		}
	}
	runtime.GC()
	runtime.ReadMemStats(&after)
	st := f.v.Stats()
	if st.TokenSize < 20 || st.TokenBytes < bound/2 {
		t.Fatalf("the cache stopped caching: %d entries, %d bytes", st.TokenSize, st.TokenBytes)
	}
	// The last token is still cached: verifying it again is a hit.
	hits := st.TokenHits
	if err := f.v.VerifyInto(toks[len(toks)-1], c); err != nil || f.v.Stats().TokenHits != hits+1 {
		t.Fatalf("the newest token is not answered from the cache: %v", err)
	}
	growth := int64(after.HeapAlloc) - int64(before.HeapAlloc)
	if growth > bound+bound/2 {
		t.Fatalf("the heap grew by %d bytes over the flood; the token cache's bound is %d", growth, bound)
	}
	t.Logf("%d tokens of ~%d bytes: cache holds %d entries, %d bytes; heap growth %d", len(toks), len(toks[0]), st.TokenSize, st.TokenBytes, growth)
}

// TestTokenCacheBytesOption: bad values are refused; 0 turns the cache off.
func TestTokenCacheBytesOption(t *testing.T) {
	for _, n := range []int64{-1, engine.MaxTokenCacheBytes + 1} {
		if _, err := engine.New(engine.NewMemoryStore(), engine.WithTokenCacheBytes(n)); err == nil {
			t.Errorf("WithTokenCacheBytes(%d) accepted", n)
		}
	}
	f := newFixture(t, engine.WithTokenCacheBytes(0))
	tok := []byte(et.SignRS256(f.priv, et.Header("k1"), validClaims()))
	for range 2 {
		if _, err := f.v.Verify(tok); err != nil {
			t.Fatal(err)
		}
	}
	if st := f.v.Stats(); st.TokenHits != 0 || st.TokenSize != 0 {
		t.Errorf("cache off, yet %d hits, %d entries", st.TokenHits, st.TokenSize)
	}
}
