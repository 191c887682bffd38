// Package bench holds jwtgate's benchmark suites (in its _test.go files):
// the engine's verify paths, its rejections, the peer libraries on the same
// token and rules, key-registry scaling, and the server over an in-memory
// listener. Run them with `make bench` (benchstat format, -count 6),
// compare two commits with `make bench-compare BASE=<ref>`, and refresh the
// published tables and charts with `make bench-doc`.
//
// This file holds the shared setup: fixed keys, token pools minted once per
// process, and a synthetic key store.
//
// Setting JWTGATE_BENCH_SMOKE=1 (done by `make bench-smoke`, which `make
// test` runs) shrinks the pre-minted token pools so that every benchmark
// runs once in seconds; it changes no benchmark's name and no registered-key
// count.
package bench

import (
	"context"
	"crypto/rsa"
	"errors"
	"fmt"
	"os"
	"runtime"
	"strconv"
	"sync"
	"time"

	"github.com/jwtgate/jwtgate/engine"
	et "github.com/jwtgate/jwtgate/engine/enginetest"
)

// Project is the project every benchmark key belongs to (and the audience).
const Project = "bench"

// TokenTTL is the lifetime of minted tokens. It is long so that a full
// `make bench` run (many minutes) never sees them expire; verifiers are
// built with WithMaxTTL(TokenTTL) to accept them.
const TokenTTL = time.Hour

// Smoke reports whether JWTGATE_BENCH_SMOKE is set: pools are small then.
func Smoke() bool { return os.Getenv("JWTGATE_BENCH_SMOKE") != "" }

// PoolSize is the number of distinct tokens minted for a cold path: 512, or
// 16 in smoke mode. With the token cache off, cycling through the pool is
// the same work for the engine as unique tokens.
func PoolSize() int {
	if Smoke() {
		return 16
	}
	return 512
}

// KeyName returns the enginetest fixed key for a modulus size.
func KeyName(bits int) string {
	if bits == 2048 {
		return "rsa2048-a"
	}
	return "rsa" + strconv.Itoa(bits)
}

// KID returns the kid the benchmark key of that size is registered under.
func KID(bits int) string { return "bench-" + strconv.Itoa(bits) }

// Payload returns the claims of benchmark token i: aud [Project], iat now,
// exp now+TokenTTL, sub, and a jti that makes every token distinct.
func Payload(now time.Time, i int) map[string]any {
	p := et.Claims(Project, now.Unix(), int64(TokenTTL/time.Second))
	p["jti"] = "t-" + strconv.Itoa(i)
	return p
}

// Mint signs n tokens in parallel on all cores; token i has the header and
// payload that hdr(i) and payload(i) return and is signed by priv(i).
func Mint(n int, priv func(i int) *rsa.PrivateKey, hdr func(i int) map[string]any, payload func(i int) map[string]any) [][]byte {
	out := make([][]byte, n)
	var wg sync.WaitGroup
	next := make(chan int)
	for range runtime.GOMAXPROCS(0) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				out[i] = []byte(et.SignRS256(priv(i), hdr(i), payload(i)))
			}
		}()
	}
	for i := range n {
		next <- i
	}
	close(next)
	wg.Wait()
	return out
}

var (
	poolMu sync.Mutex
	pools  = map[string][][]byte{}
)

// Pool returns PoolSize distinct valid tokens signed by the fixed key of
// that size under KID(bits), minted once per process.
func Pool(bits int) [][]byte {
	return memo("verify-"+strconv.Itoa(bits), func() [][]byte {
		priv := et.Key(KeyName(bits))
		now := time.Now()
		return Mint(PoolSize(),
			func(int) *rsa.PrivateKey { return priv },
			func(int) map[string]any { return et.Header(KID(bits)) },
			func(i int) map[string]any { return Payload(now, i) })
	})
}

func memo(name string, mint func() [][]byte) [][]byte {
	poolMu.Lock()
	defer poolMu.Unlock()
	if p, ok := pools[name]; ok {
		return p
	}
	p := mint()
	pools[name] = p
	return p
}

// NewVerifier returns a Verifier over a MemoryStore holding the fixed keys
// of 2048, 3072 and 4096 bits (kids KID(bits), project Project), with
// WithMaxTTL(TokenTTL) and then opts.
func NewVerifier(opts ...engine.Option) (*engine.Verifier, error) {
	v, err := engine.New(engine.NewMemoryStore(), append([]engine.Option{engine.WithMaxTTL(TokenTTL)}, opts...)...)
	if err != nil {
		return nil, err
	}
	for _, bits := range []int{2048, 3072, 4096} {
		k := &engine.Key{KID: KID(bits), Project: Project, Label: "bench", Public: &et.Key(KeyName(bits)).PublicKey}
		if _, err := v.AddKey(context.Background(), k); err != nil {
			return nil, err
		}
	}
	return v, nil
}

// SyntheticStore is a read-only engine.KeyStore that holds N keys without
// storing them: kid SyntheticKID(i) for 0 <= i < N is a key of project
// Project whose public key is Publics[i%len(Publics)]. It lets a benchmark
// register a million kids (the engine caches per kid) without generating a
// million RSA keys or holding a million entries.
type SyntheticStore struct {
	N       int
	Publics []*rsa.PublicKey
}

// SyntheticKID names key i of a SyntheticStore.
func SyntheticKID(i int) string { return fmt.Sprintf("k%07d", i) }

var errReadOnly = errors.New("bench: synthetic store is read-only")

// Get implements engine.KeyStore.
func (s *SyntheticStore) Get(_ context.Context, kid string) (*engine.Key, error) {
	if len(kid) != 8 || kid[0] != 'k' {
		return nil, engine.ErrKeyNotFound
	}
	i, err := strconv.Atoi(kid[1:])
	if err != nil || i < 0 || i >= s.N {
		return nil, engine.ErrKeyNotFound
	}
	return &engine.Key{KID: kid, Project: Project, Status: engine.StatusActive, Public: s.Publics[i%len(s.Publics)]}, nil
}

// Create implements engine.KeyStore (read-only: always an error).
func (s *SyntheticStore) Create(context.Context, *engine.Key) error { return errReadOnly }

// Update implements engine.KeyStore (read-only: always an error).
func (s *SyntheticStore) Update(context.Context, string, string, engine.KeyUpdate, time.Time) (*engine.Key, error) {
	return nil, errReadOnly
}

// Delete implements engine.KeyStore (read-only: always an error).
func (s *SyntheticStore) Delete(context.Context, string, string) error { return errReadOnly }

// List implements engine.KeyStore (read-only: lists nothing).
func (s *SyntheticStore) List(context.Context, string) ([]*engine.Key, error) { return nil, nil }
