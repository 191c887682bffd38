package bench

import (
	"crypto/rsa"
	"runtime"
	"strconv"
	"testing"
	"time"

	"github.com/jwtgate/jwtgate/engine"
	et "github.com/jwtgate/jwtgate/engine/enginetest"
)

// KeysRegistered are BenchmarkKeys' registry sizes.
var KeysRegistered = []int{10, 100_000, 1_000_000}

// keysLRU is the key cache size BenchmarkKeys configures: the hot set
// (PoolSize kids) is four times larger, so it never fits.
func keysLRU() int { return PoolSize() / 4 }

var keysPrivs = []string{"rsa2048-a", "rsa2048-b", "rsa2048-c"}

// keysBaseNsOp is the ns/op of the last registered=10 run, the reference
// for the rel-throughput metric of the larger registries.
var keysBaseNsOp float64

// BenchmarkKeys: cold verification (token cache off) of PoolSize tokens
// whose kids are spread evenly over a registry of N keys (a SyntheticStore),
// with a key LRU of PoolSize/4 entries: with N=10 every key stays cached;
// with 100k and 1M the hot set is larger than the LRU and the tokens cycle,
// so every verify misses the LRU, loads the key from the store and prepares
// it. It reports rel-throughput (the 10-key ns/op divided by this ns/op,
// measured in the same process), heap-MB (runtime HeapInuse after the run,
// after a GC) and keys-cached.
func BenchmarkKeys(b *testing.B) {
	pubs := make([]*rsa.PublicKey, len(keysPrivs))
	for i, n := range keysPrivs {
		pubs[i] = &et.Key(n).PublicKey
	}
	for _, n := range KeysRegistered {
		b.Run("registered="+strconv.Itoa(n), func(b *testing.B) {
			size := PoolSize()
			kidIndex := func(i int) int { return int(int64(i) * int64(n) / int64(size)) }
			if n < size {
				kidIndex = func(i int) int { return i % n }
			}
			toks := memo("keys-"+strconv.Itoa(n), func() [][]byte {
				now := time.Now()
				return Mint(size,
					func(i int) *rsa.PrivateKey { return et.Key(keysPrivs[kidIndex(i)%len(keysPrivs)]) },
					func(i int) map[string]any { return et.Header(SyntheticKID(kidIndex(i))) },
					func(i int) map[string]any { return Payload(now, i) })
			})
			v, err := engine.New(&SyntheticStore{N: n, Publics: pubs},
				engine.WithMaxTTL(TokenTTL), engine.WithTokenCacheSize(0), engine.WithKeyCacheSize(keysLRU()))
			if err != nil {
				b.Fatal(err)
			}
			runVerify(b, v, toks, "serial", nil, 0)
			b.StopTimer()
			nsOp := float64(b.Elapsed().Nanoseconds()) / float64(b.N)
			if n == KeysRegistered[0] {
				keysBaseNsOp = nsOp
			} else if keysBaseNsOp > 0 {
				b.ReportMetric(keysBaseNsOp/nsOp, "rel-throughput")
			}
			runtime.GC()
			var ms runtime.MemStats
			runtime.ReadMemStats(&ms)
			b.ReportMetric(float64(ms.HeapInuse)/(1<<20), "heap-MB")
			b.ReportMetric(float64(v.Stats().KeySize), "keys-cached")
		})
	}
}
