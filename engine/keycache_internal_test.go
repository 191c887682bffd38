//go:build !race

package engine

import (
	"crypto/rsa"
	"runtime"
	"strconv"
	"testing"
	"time"

	"github.com/jwtgate/jwtgate/engine/enginetest"
	"github.com/jwtgate/jwtgate/engine/internal/rsaverify"
	"github.com/jwtgate/jwtgate/internal/cpuinfo"
)

// TestKeyCacheBytesPerKey measures the heap that prepared 2048-bit keys
// take in the key cache and checks the cache's own estimate (entrySize,
// which the byte bound and the gauges use) against it: within 15%. It logs
// the measured bytes per key (published in docs/BENCHMARKS.md).
func TestKeyCacheBytesPerKey(t *testing.T) {
	if testing.Short() {
		t.Skip("measures the heap")
	}
	pubs := testPublicKeys(t)
	const n = 20_000
	c := newKeyCache(NewMemoryStore(), 0, 1<<30, 1, time.Second, time.Second)
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	for i := range n {
		// Fresh strings, as a store read returns them.
		k := &Key{KID: "kid-" + strconv.Itoa(1_000_000+i) + "-abcdefghijk", Project: "project-" + strconv.Itoa(i%1000), Status: StatusActive, Public: pubs[i%len(pubs)]}
		e, err := newKeyEntry(k)
		if err != nil {
			t.Fatal(err)
		}
		sh := c.shard([]byte(k.KID))
		sh.mu.Lock()
		c.add(sh, string([]byte(k.KID)), e)
		sh.mu.Unlock()
	}
	runtime.GC()
	runtime.ReadMemStats(&after)
	var st CacheStats
	c.stats(&st)
	if st.KeySize != n {
		t.Fatalf("cache holds %d keys, want %d", st.KeySize, n)
	}
	measured := float64(after.HeapAlloc-before.HeapAlloc) / n
	estimated := float64(st.KeyBytes) / n
	t.Logf("prepared 2048-bit key in the key cache: %.0f bytes measured (heap), %.0f estimated; %d keys per default bound (%d MiB)",
		measured, estimated, KeyCacheKeysFor(DefaultKeyCacheBytes), DefaultKeyCacheBytes>>20)
	if estimated < measured*0.85 || estimated > measured*1.15 {
		t.Fatalf("estimate %.0f bytes per key is off the measured %.0f by more than 15%%", estimated, measured)
	}
	runtime.KeepAlive(c)
}

// testPublicKeys returns a few distinct 2048-bit public keys (the moduli
// differ; their preparation is what is measured).
func testPublicKeys(t *testing.T) []*rsa.PublicKey {
	t.Helper()
	var out []*rsa.PublicKey
	for _, name := range []string{"rsa2048-a", "rsa2048-b", "rsa2048-c"} {
		k := enginetest.Key(name)
		if _, err := rsaverify.New(&k.PublicKey); err != nil {
			t.Fatal(err)
		}
		out = append(out, &k.PublicKey)
	}
	return out
}

// BenchmarkKeyPrepare: what a key costs when it enters the key cache
// (parsing is the store's; this is the engine's preparation: Montgomery
// constants and the entry).
func BenchmarkKeyPrepare(b *testing.B) {
	k := &Key{KID: "kid-0000001", Project: "p-1", Status: StatusActive, Public: &enginetest.Key("rsa2048-a").PublicKey}
	b.ReportAllocs()
	t := cpuinfo.StartCPUTimer(b) // cpu-ns/op: unaffected by waiting for a core
	n := 0
	for b.Loop() {
		if _, err := newKeyEntry(k); err != nil {
			b.Fatal(err)
		}
		n++
	}
	t.Stop(n)
}

// While an index load runs, kids and projects marked known are kept aside
// for the swap. The same registered kid read again and again (an evicted
// key reloaded by client traffic during a long load) must not grow them.
func TestRegistryLoadMarksAreASet(t *testing.T) {
	v, err := New(NewMemoryStore())
	if err != nil {
		t.Fatal(err)
	}
	defer v.Close()
	c := v.keys
	c.reg.loading.Store(true)
	defer c.reg.loading.Store(false)
	h := c.hash([]byte("k1"))
	sh := c.shardOf(h)
	for range 1000 {
		sh.mu.Lock()
		c.markKnown(sh, h)
		sh.mu.Unlock()
		c.reg.addProject("p")
	}
	sh.mu.Lock()
	kids := len(sh.fresh)
	sh.mu.Unlock()
	c.reg.mu.Lock()
	projects := len(c.reg.freshProjects)
	c.reg.mu.Unlock()
	if kids != 1 || projects != 1 {
		t.Fatalf("one kid and one project marked 1000 times during a load: %d kid marks, %d project marks kept, want 1 and 1", kids, projects)
	}
}
