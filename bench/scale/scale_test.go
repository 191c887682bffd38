// Package scale measures jwtgate's key registry at SaaS scale (issue 15):
// a registry of up to a million keys, bulk-loaded into the embedded bbolt
// store and into a real PostgreSQL (internal/pgtest), verified with tokens
// spread over hot sets of kids, with the default engine options.
//
// TestScale is the benchmark (make bench-scale; heavy, not part of make
// test). TestScaleSmall runs the same harness at 20,000 keys in make test
// and asserts the properties: no store read per verify in steady state,
// none for unknown kids, memory within the bound and eviction costing one
// read.
package scale

import (
	"context"
	crand "crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jwtgate/jwtgate/engine"
	et "github.com/jwtgate/jwtgate/engine/enginetest"
	"github.com/jwtgate/jwtgate/internal/cpuinfo"
	"github.com/jwtgate/jwtgate/internal/pgtest"
	"github.com/jwtgate/jwtgate/store/boltstore"
	"github.com/jwtgate/jwtgate/store/pgstore"
	"github.com/jwtgate/jwtgate/store/storetest"
)

var (
	flagKeys   = flag.Int("scale.keys", 0, "registered keys (0: TestScale is skipped)")
	flagHot    = flag.String("scale.hot", "10,1000,10000,100000,1000000", "hot-set sizes (kids in steady use), comma-separated")
	flagTokens = flag.Int("scale.tokens", 3000, "distinct tokens verified per hot set and round")
	flagRounds = flag.Int("scale.rounds", 3, "rounds; each round measures every hot set on every store in turn")
	flagStores = flag.String("scale.stores", "bolt,postgres", "stores to measure")
	flagPrivs  = flag.Int("scale.privs", 16, "distinct RSA-2048 key pairs, reused round-robin across kids")
	flagOut    = flag.String("scale.out", "", "also write the tables (markdown) to this file")
)

// tokenTTL: tokens are minted before the rounds start and must outlive
// them; the only option that differs from the defaults is WithMaxTTL.
const tokenTTL = time.Hour

func kidOf(i int) string     { return fmt.Sprintf("kid-%07d", i) }
func projectOf(i int) string { return "p-" + strconv.Itoa(i/2) } // two keys per project

// registry describes the bulk-loaded keys: kid i uses key pair i % len(privs)
// and was last used i seconds before base, so the hot set of size H (kids
// 0..H-1) is also the H most recently used keys.
type registry struct {
	n     int
	privs []*rsa.PrivateKey
	base  time.Time
}

func (r *registry) key(i int) *engine.Key {
	created := r.base.Add(-365 * 24 * time.Hour).Add(time.Duration(i) * time.Microsecond)
	return &engine.Key{
		KID: kidOf(i), Project: projectOf(i), Label: "scale", Status: engine.StatusActive,
		Public: &r.privs[i%len(r.privs)].PublicKey, CreatedAt: created, UpdatedAt: created,
		LastUsedAt: r.base.Add(-time.Duration(i) * time.Second),
	}
}

// load bulk-loads the registry in batches (one transaction or COPY each).
func (r *registry) load(t testing.TB, imp storetest.Importer) time.Duration {
	t.Helper()
	start := time.Now()
	const batch = 50_000
	for lo := 0; lo < r.n; lo += batch {
		ks := make([]*engine.Key, 0, batch)
		for i := lo; i < min(lo+batch, r.n); i++ {
			ks = append(ks, r.key(i))
		}
		if err := imp.ImportKeys(context.Background(), ks); err != nil {
			t.Fatalf("import keys %d..: %v", lo, err)
		}
	}
	return time.Since(start)
}

// mint signs count tokens whose kids are drawn uniformly from the hot set
// of size hot (seeded: the same for every store), on all cores.
func (r *registry) mint(hot, count int, seed uint64) [][]byte {
	rng := rand.New(rand.NewPCG(seed, uint64(hot)))
	kids := make([]int, count)
	for i := range kids {
		kids[i] = rng.IntN(hot)
	}
	out := make([][]byte, count)
	now := time.Now().Unix()
	var wg sync.WaitGroup
	var next atomic.Int64
	for range runtime.GOMAXPROCS(0) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1) - 1)
				if i >= count {
					return
				}
				k := kids[i]
				claims := et.Claims(projectOf(k), now, int64(tokenTTL/time.Second))
				claims["jti"] = strconv.FormatUint(seed, 36) + "-" + strconv.Itoa(i)
				out[i] = []byte(et.SignRS256(r.privs[k%len(r.privs)], et.Header(kidOf(k)), claims))
			}
		}()
	}
	wg.Wait()
	return out
}

// node is one verifier over a store, as a jwtgate process has it.
type node struct {
	v       *engine.Verifier
	cs      *storetest.Counting
	close   func()
	startup time.Duration // open the store, engine.New, until Ready
}

type storeKind struct {
	name  string
	open  func(t testing.TB, opts ...engine.Option) *node
	close func()
}

func boltKind(t testing.TB, r *registry) storeKind {
	path := filepath.Join(t.TempDir(), "keys.db")
	st, err := boltstore.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	took := r.load(t, st)
	st.Close()
	t.Logf("bolt: %d keys bulk-loaded in %s", r.n, took.Round(time.Millisecond))
	return storeKind{name: "bolt", open: func(t testing.TB, opts ...engine.Option) *node {
		start := time.Now()
		st, err := boltstore.Open(path)
		if err != nil {
			t.Fatal(err)
		}
		return startNode(t, start, st, func() { st.Close() }, opts)
	}}
}

func postgresKind(t testing.TB, r *registry) storeKind {
	dsn := pgtest.Start(t)
	ctx := context.Background()
	st, err := pgstore.Open(ctx, dsn, pgstore.WithoutListener())
	if err != nil {
		t.Fatal(err)
	}
	took := r.load(t, st)
	if _, err := st.Pool().Exec(ctx, "VACUUM ANALYZE jwtgate_keys"); err != nil {
		t.Fatal(err)
	}
	st.Close()
	t.Logf("postgres: %d keys bulk-loaded (COPY, batches of 50,000) in %s", r.n, took.Round(time.Millisecond))
	return storeKind{name: "postgres", open: func(t testing.TB, opts ...engine.Option) *node {
		start := time.Now()
		st, err := pgstore.Open(ctx, dsn)
		if err != nil {
			t.Fatal(err)
		}
		return startNode(t, start, st, func() { st.Close() }, opts)
	}}
}

func startNode(t testing.TB, start time.Time, st engine.KeyStore, closeStore func(), opts []engine.Option) *node {
	t.Helper()
	cs := &storetest.Counting{KeyStore: st}
	v, err := engine.New(cs, append([]engine.Option{engine.WithMaxTTL(tokenTTL)}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	select {
	case <-v.Ready():
	case <-time.After(5 * time.Minute):
		t.Fatal("registry not loaded within 5 minutes")
	}
	if err := v.LastLoad().Err; err != nil {
		t.Fatalf("registry load: %v", err)
	}
	return &node{v: v, cs: cs, startup: time.Since(start), close: func() { v.Close(); closeStore() }}
}

// sample is one measurement: a hot set verified on one store in one round.
type sample struct {
	store                  string
	hot, round             int
	verifies               int
	elapsed                time.Duration
	p50, p99               time.Duration
	reads, readsAtStart    int64
	heapMiB                float64 // live heap of the node after the run (index, cache)
	startup                time.Duration
	warmed, held, keyBytes int
	indexed                int
	failed                 int
}

func (s sample) rate() float64       { return float64(s.verifies) / s.elapsed.Seconds() }
func (s sample) readRate() float64   { return float64(s.reads) / s.elapsed.Seconds() }
func (s sample) readsPerOp() float64 { return float64(s.reads) / float64(s.verifies) }

// measure starts a node, verifies the tokens with one worker per core,
// and reports.
func measure(t testing.TB, kind storeKind, hot, round int, tokens [][]byte, opts ...engine.Option) sample {
	t.Helper()
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	heap0 := ms.HeapAlloc
	nd := kind.open(t, opts...)
	defer nd.close()
	s := sample{store: kind.name, hot: hot, round: round, verifies: len(tokens), startup: nd.startup,
		warmed: nd.v.LastLoad().Warmed, readsAtStart: nd.cs.Gets.Load()}
	workers := runtime.GOMAXPROCS(0)
	lat := make([]time.Duration, len(tokens))
	var next atomic.Int64
	var failed atomic.Int64
	var firstErr atomic.Value
	reads0 := nd.cs.Reads()
	var wg sync.WaitGroup
	start := time.Now()
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c := engine.AcquireClaims()
			defer engine.ReleaseClaims(c)
			for {
				i := int(next.Add(1) - 1)
				if i >= len(tokens) {
					return
				}
				t0 := time.Now()
				err := nd.v.VerifyInto(tokens[i], c)
				lat[i] = time.Since(t0)
				if err != nil {
					failed.Add(1)
					firstErr.CompareAndSwap(nil, err.Error())
				}
			}
		}()
	}
	wg.Wait()
	s.elapsed = time.Since(start)
	s.reads = nd.cs.Reads() - reads0
	s.failed = int(failed.Load())
	if s.failed > 0 {
		t.Errorf("%s hot=%d: %d of %d verifies failed (first: %v)", kind.name, hot, s.failed, len(tokens), firstErr.Load())
	}
	slices.Sort(lat)
	s.p50, s.p99 = lat[len(lat)/2], lat[len(lat)*99/100]
	st := nd.v.Stats()
	s.held, s.keyBytes, s.indexed = st.KeySize, st.KeyBytes, st.IndexedKIDs
	runtime.GC()
	runtime.ReadMemStats(&ms)
	s.heapMiB = float64(int64(ms.HeapAlloc)-int64(heap0)) / (1 << 20)
	runtime.KeepAlive(nd)
	return s
}

func parseInts(s string) ([]int, error) {
	var out []int
	for _, f := range strings.Split(s, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(strings.ReplaceAll(f, "_", "")))
		if err != nil || n <= 0 {
			return nil, fmt.Errorf("bad size %q", f)
		}
		out = append(out, n)
	}
	return out, nil
}

func genPrivs(t testing.TB, n int) []*rsa.PrivateKey {
	t.Helper()
	privs := []*rsa.PrivateKey{et.Key("rsa2048-a"), et.Key("rsa2048-b"), et.Key("rsa2048-c")}
	for len(privs) < n {
		k, err := rsa.GenerateKey(crand.Reader, 2048)
		if err != nil {
			t.Fatal(err)
		}
		privs = append(privs, k)
	}
	return privs[:n]
}

// TestScale is the scale benchmark (make bench-scale). For every store it
// bulk-loads the registry once; then, in each round, for every hot set, it
// starts a fresh node (store open, engine.New with default options, until
// the registry index is loaded and the key cache warmed: the start-up
// time), verifies distinct tokens whose kids are uniform over the hot set,
// and records verifies/s, p50/p99, store reads, and the node's heap.
// Rounds alternate stores and hot sets, so that the machine's background
// load falls on all alike; the tables give medians over rounds.
func TestScale(t *testing.T) {
	if *flagKeys == 0 {
		t.Skip("the scale benchmark runs with -scale.keys N (make bench-scale)")
	}
	hots, err := parseInts(*flagHot)
	if err != nil {
		t.Fatal(err)
	}
	r := &registry{n: *flagKeys, privs: genPrivs(t, *flagPrivs), base: time.Now().UTC().Truncate(time.Second)}
	var kinds []storeKind
	for _, name := range strings.Split(*flagStores, ",") {
		switch strings.TrimSpace(name) {
		case "bolt":
			kinds = append(kinds, boltKind(t, r))
		case "postgres":
			kinds = append(kinds, postgresKind(t, r))
		default:
			t.Fatalf("unknown store %q", name)
		}
	}
	mintStart := time.Now()
	tokens := map[int][][]byte{}
	for _, h := range hots {
		tokens[h] = r.mint(min(h, r.n), *flagTokens**flagRounds, uint64(h))
	}
	t.Logf("minted %d tokens in %s", len(hots)**flagTokens**flagRounds, time.Since(mintStart).Round(time.Millisecond))
	var samples []sample
	for round := range *flagRounds {
		for _, kind := range kinds {
			for _, h := range hots {
				toks := tokens[h][round**flagTokens : (round+1)**flagTokens]
				s := measure(t, kind, h, round, toks)
				t.Logf("round %d %s hot=%d: %.0f verifies/s, p99 %s, %d store reads (%.3f per verify), start-up %s, warmed %d, held %d, heap %+.0f MiB",
					round+1, kind.name, h, s.rate(), s.p99, s.reads, s.readsPerOp(), s.startup.Round(time.Millisecond), s.warmed, s.held, s.heapMiB)
				samples = append(samples, s)
			}
		}
	}
	var out io.Writer = os.Stdout
	if *flagOut != "" {
		f, err := os.Create(*flagOut)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		out = io.MultiWriter(os.Stdout, f)
	}
	report(out, r, kinds, hots, samples)
}

func median(xs []float64) float64 {
	slices.Sort(xs)
	if len(xs)%2 == 1 {
		return xs[len(xs)/2]
	}
	return (xs[len(xs)/2-1] + xs[len(xs)/2]) / 2
}

func report(w io.Writer, r *registry, kinds []storeKind, hots []int, samples []sample) {
	cpu := cpuinfo.Read()
	fmt.Fprintf(w, "Registry: %d keys (%d RSA-2048 key pairs reused round-robin across kids), two keys per project. %d distinct tokens per hot set and round, %d rounds, %d cores; CPU: %s.\n\n",
		r.n, len(r.privs), *flagTokens, *flagRounds, runtime.GOMAXPROCS(0), cpu.String())
	for _, k := range kinds {
		fmt.Fprintf(w, "**%s** (medians over rounds; rel = verifies/s over the smallest hot set's, per round)\n\n", k.name)
		fmt.Fprintln(w, "| hot set | verifies/s | rel | p50 | p99 | store reads/s | reads/verify | start-up to ready | keys warmed | keys held | node heap |")
		fmt.Fprintln(w, "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
		base := map[int]float64{}
		for _, s := range samples {
			if s.store == k.name && s.hot == hots[0] {
				base[s.round] = s.rate()
			}
		}
		for _, h := range hots {
			var rate, rel, p50, p99, rr, rpo, up, warmed, held, heap []float64
			for _, s := range samples {
				if s.store != k.name || s.hot != h {
					continue
				}
				rate = append(rate, s.rate())
				rel = append(rel, s.rate()/base[s.round])
				p50 = append(p50, float64(s.p50))
				p99 = append(p99, float64(s.p99))
				rr = append(rr, s.readRate())
				rpo = append(rpo, s.readsPerOp())
				up = append(up, float64(s.startup))
				warmed = append(warmed, float64(s.warmed))
				held = append(held, float64(s.held))
				heap = append(heap, s.heapMiB)
			}
			if len(rate) == 0 {
				continue
			}
			fmt.Fprintf(w, "| %d | %.0f | %.2f | %s | %s | %.0f | %.3f | %s | %.0f | %.0f | %.0f MiB |\n",
				h, median(rate), median(rel), time.Duration(median(p50)).Round(100*time.Nanosecond), time.Duration(median(p99)).Round(time.Microsecond),
				median(rr), median(rpo), time.Duration(median(up)).Round(10*time.Millisecond), median(warmed), median(held), median(heap))
		}
		fmt.Fprintln(w)
	}
}

// TestScaleSmall: the harness at 20,000 keys on both stores, asserting
// what the benchmark measures. A node is ready (index loaded, cache
// warmed) within seconds; in steady state a hot set that fits the cache
// verifies with no store read at all; unknown kids cost none; with a key
// cache bounded to about 2,000 keys and a 5,000-kid hot set, the cache
// stays within its bound and each verify of an evicted key costs exactly
// one store read.
func TestScaleSmall(t *testing.T) {
	r := &registry{n: 20_000, privs: genPrivs(t, 3), base: time.Now().UTC().Truncate(time.Second)}
	tokens := r.mint(5000, 240, 1)
	for _, mk := range []func(testing.TB, *registry) storeKind{boltKind, postgresKind} {
		kind := mk(t, r)
		t.Run(kind.name, func(t *testing.T) {
			// Default options: the whole registry fits and is warmed.
			s := measure(t, kind, 5000, 0, tokens)
			if s.startup > 10*time.Second || s.warmed != r.n || s.indexed != r.n {
				t.Errorf("start-up %s, %d keys warmed, %d kids indexed; want within 10 s, %d and %d", s.startup, s.warmed, s.indexed, r.n, r.n)
			}
			if s.reads != 0 || s.readsAtStart != 0 {
				t.Errorf("steady state: %d store reads during %d verifies (%d before them), want none", s.reads, s.verifies, s.readsAtStart)
			}

			// Unknown kids: no store read.
			nd := kind.open(t)
			reads := nd.cs.Reads()
			c := new(engine.Claims)
			for i := range 20_000 {
				if err := nd.v.VerifyInto(storetest.UnknownKIDToken("nope-"+strconv.Itoa(i), "p-1", time.Now()), c); !errors.Is(err, engine.ErrUnknownKID) {
					t.Fatalf("unknown kid: %v", err)
				}
			}
			if got := nd.cs.Reads() - reads; got != 0 {
				t.Errorf("20,000 unknown kids made %d store reads, want 0", got)
			}
			nd.close()

			// Bounded memory: a cache for about 2,000 keys, a 5,000-kid hot set.
			bound := engine.KeyCacheBytesFor(2000, 2048)
			nd = kind.open(t, engine.WithKeyCacheBytes(bound))
			defer nd.close()
			st := nd.v.Stats()
			if st.KeyBytes > bound || st.KeySize > 2000 || st.KeySize < 1500 {
				t.Errorf("after warming: %d keys held in %d bytes, want about 2,000 within %d", st.KeySize, st.KeyBytes, bound)
			}
			misses, reads := 0, nd.cs.Gets.Load()
			for _, tok := range tokens {
				kid := kidFromToken(t, tok)
				cached := nd.v.Cached(kid)
				before := nd.cs.Gets.Load()
				if err := nd.v.VerifyInto(tok, c); err != nil {
					t.Fatal(err)
				}
				got := nd.cs.Gets.Load() - before
				if want := int64(map[bool]int{true: 0, false: 1}[cached]); got != want {
					t.Fatalf("verify of %s (cached %v) made %d store reads, want %d", kid, cached, got, want)
				}
				if !cached {
					misses++
				}
			}
			st = nd.v.Stats()
			if st.KeyBytes > bound {
				t.Errorf("key cache uses %d bytes, over its bound %d", st.KeyBytes, bound)
			}
			if misses == 0 || misses == len(tokens) {
				t.Errorf("%d of %d verifies missed the cache: the bound did not bite, or nothing was warmed", misses, len(tokens))
			}
			t.Logf("bounded cache: %d keys in %d bytes (bound %d); %d of %d verifies read their key (%d reads)", st.KeySize, st.KeyBytes, bound, misses, len(tokens), nd.cs.Gets.Load()-reads)
		})
	}
}

// kidFromToken reads the kid of a token minted by registry.mint.
func kidFromToken(t testing.TB, tok []byte) string {
	t.Helper()
	hdr, _, _ := strings.Cut(string(tok), ".")
	b, err := base64.RawURLEncoding.DecodeString(hdr)
	if err != nil {
		t.Fatal(err)
	}
	var h struct{ Kid string }
	if err := json.Unmarshal(b, &h); err != nil {
		t.Fatal(err)
	}
	return h.Kid
}
