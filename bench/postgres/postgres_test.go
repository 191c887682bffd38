// Package postgres measures jwtgate on the PostgreSQL key store: how fast a
// key change made on one node is in force on another (propagation delay),
// and whether the store changes verify throughput when the hot keys are in
// the LRU (it should not: the store is not touched then).
//
//	make bench-postgres
//	go test -run '^TestPropagationDelay$' -v ./bench/postgres/ -args -changes 1000
//	go test -run '^$' -bench BenchmarkVerifyHot -benchmem -count 6 ./bench/postgres/
package postgres

import (
	"context"
	"crypto/rsa"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/jwtgate/jwtgate/engine"
	"github.com/jwtgate/jwtgate/engine/enginetest"
	"github.com/jwtgate/jwtgate/internal/pgtest"
	"github.com/jwtgate/jwtgate/server"
	"github.com/jwtgate/jwtgate/store/pgstore"
)

var changes = flag.Int("changes", 40, "key changes to time in TestPropagationDelay (the published figure uses 1000)")

func TestMain(m *testing.M) { pgtest.Main(m) }

const adminToken = "bench-admin-token-0123456789abcdef"

type node struct {
	srv   *server.Server
	st    *pgstore.Store
	base  string
	admin string
}

func startNode(tb testing.TB, store engine.KeyStore, opts ...engine.Option) *server.Server {
	tb.Helper()
	srv, err := server.New(server.Config{
		Addr: "127.0.0.1:0", AdminAddr: "127.0.0.1:0", Store: store, AdminToken: adminToken,
		DataDir: tb.TempDir(), Logger: slog.New(slog.DiscardHandler), EngineOptions: opts,
	})
	if err != nil {
		tb.Fatal(err)
	}
	return srv
}

func startPGNode(t *testing.T, dsn, name string) *node {
	t.Helper()
	st, err := pgstore.Open(context.Background(), dsn, pgstore.WithApplicationName("bench-"+name))
	if err != nil {
		t.Fatal(err)
	}
	srv := startNode(t, st)
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		srv.Shutdown(ctx)
		st.Close()
	})
	return &node{srv: srv, st: st, base: "http://" + srv.Addr(), admin: "http://" + srv.AdminAddr()}
}

// client keeps connections alive so that a verify costs one loopback round
// trip.
var client = &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 8}}

func call(t *testing.T, method, url, body string, auth string) (int, string) {
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+auth)
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	return resp.StatusCode, string(b)
}

// TestPropagationDelay times, for each change, the delay from the admin
// response on node A to the first refusal (or acceptance) on node B, which
// polls /v1/verify over loopback HTTP. The changes alternate: deactivate a
// key (B must refuse with key_inactive), reactivate it (B must accept).
// Every change must propagate; the delays are reported, not asserted.
func TestPropagationDelay(t *testing.T) {
	dsn := pgtest.Start(t)
	a, b := startPGNode(t, dsn, "a"), startPGNode(t, dsn, "b")
	priv := enginetest.Key("rsa2048-a")
	const kids = 20
	toks := make([]string, kids)
	for i := range kids {
		kid := fmt.Sprintf("p%d", i)
		body, _ := json.Marshal(map[string]any{"public_key": string(enginetest.PublicPEM(&priv.PublicKey)), "kid": kid})
		if st, resp := call(t, "POST", a.admin+"/v1/projects/proj/keys", string(body), adminToken); st != 201 {
			t.Fatalf("add key: %d %s", st, resp)
		}
		toks[i] = enginetest.SignRS256(priv, enginetest.Header(kid), enginetest.Claims("proj", time.Now().Unix(), 600))
	}
	for _, tok := range toks { // warm B's caches: the key and the token are cached there
		waitStatus(t, b, tok, 200, 5*time.Second)
	}
	var refuse, accept []time.Duration
	for i := range *changes {
		k := i % kids
		kid := fmt.Sprintf("p%d", k)
		status, want := "inactive", 401
		if (i/kids)%2 == 1 {
			status, want = "active", 200
		}
		// force: the keys are in use on purpose (the rotation guardrail
		// would refuse); this measures propagation.
		if st, resp := call(t, "PATCH", a.admin+"/v1/projects/proj/keys/"+kid+"?force=true", `{"status":"`+status+`"}`, adminToken); st != 200 {
			t.Fatalf("PATCH: %d %s", st, resp)
		}
		d := waitStatus(t, b, toks[k], want, 5*time.Second)
		if want == 401 {
			refuse = append(refuse, d)
		} else {
			accept = append(accept, d)
		}
	}
	all := append(append([]time.Duration(nil), refuse...), accept...)
	t.Logf("propagation A->B over %d changes: %s", len(all), summary(all))
	t.Logf("  deactivations (refusal on B), %d: %s", len(refuse), summary(refuse))
	t.Logf("  reactivations (acceptance on B), %d: %s", len(accept), summary(accept))
}

// waitStatus polls B until tok gets want; it returns the time it took.
func waitStatus(t *testing.T, n *node, tok string, want int, bound time.Duration) time.Duration {
	t.Helper()
	start := time.Now()
	for {
		st, _ := call(t, "GET", n.base+"/v1/verify", "", tok)
		if st == want {
			return time.Since(start)
		}
		if time.Since(start) > bound {
			t.Fatalf("node still answers %d after %v, want %d", st, bound, want)
		}
	}
}

func summary(d []time.Duration) string {
	if len(d) == 0 {
		return "no samples"
	}
	s := slices.Clone(d)
	slices.Sort(s)
	q := func(p float64) time.Duration { return s[min(len(s)-1, int(p*float64(len(s))))] }
	return fmt.Sprintf("p50 %v, p90 %v, p99 %v, max %v", q(0.50).Round(time.Microsecond),
		q(0.90).Round(time.Microsecond), q(0.99).Round(time.Microsecond), s[len(s)-1].Round(time.Microsecond))
}

// BenchmarkVerifyHot: verify throughput of a node's verify handler on the
// memory store and on the PostgreSQL store, hot keys in the LRU (100 keys,
// 1000 distinct tokens), with the token cache on and off. The handler runs
// in-process (no sockets), in parallel on all CPUs.
func BenchmarkVerifyHot(b *testing.B) {
	for _, tc := range []struct {
		name string
		opts []engine.Option
	}{
		{"tokencache=on", nil},
		{"tokencache=off", []engine.Option{engine.WithTokenCacheSize(0)}},
	} {
		for _, storeName := range []string{"memory", "postgres"} {
			b.Run(tc.name+"/store="+storeName, func(b *testing.B) {
				var store engine.KeyStore
				if storeName == "memory" {
					store = engine.NewMemoryStore()
				} else {
					st, err := pgstore.Open(context.Background(), pgtest.Start(b))
					if err != nil {
						b.Fatal(err)
					}
					b.Cleanup(func() { st.Close() })
					store = st
				}
				benchVerify(b, store, tc.opts)
			})
		}
	}
}

func benchVerify(b *testing.B, store engine.KeyStore, opts []engine.Option) {
	srv := startNode(b, store, opts...)
	v := srv.Verifier()
	ctx := context.Background()
	privs := []*rsa.PrivateKey{enginetest.Key("rsa2048-a"), enginetest.Key("rsa2048-b"), enginetest.Key("rsa2048-c")}
	const keys, tokens = 100, 1000
	for i := range keys {
		if _, err := v.AddKey(ctx, &engine.Key{KID: fmt.Sprintf("hot%d", i), Project: "proj", Public: &privs[i%len(privs)].PublicKey}); err != nil {
			b.Fatal(err)
		}
	}
	now := time.Now().Unix()
	ctxs := make([]*fasthttp.RequestCtx, tokens)
	for i := range tokens {
		k := i % keys
		cl := enginetest.Claims("proj", now, 600)
		cl["sub"] = fmt.Sprintf("user-%d", i)
		tok := enginetest.SignRS256(privs[k%len(privs)], enginetest.Header(fmt.Sprintf("hot%d", k)), cl)
		c := new(fasthttp.RequestCtx)
		c.Request.Header.SetMethod("GET")
		c.Request.SetRequestURI("/v1/verify")
		c.Request.Header.Set("Authorization", "Bearer "+tok)
		ctxs[i] = c
	}
	h := srv.VerifyHandler()
	for _, c := range ctxs { // warm: every key in the LRU, every token cached
		c.Response.Reset()
		h(c)
		if c.Response.StatusCode() != 200 {
			b.Fatalf("warm-up verify: %d %s", c.Response.StatusCode(), c.Response.Body())
		}
	}
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		// Each goroutine gets its own request contexts (a RequestCtx is not
		// shared between connections), walking the tokens in order.
		mine := make([]*fasthttp.RequestCtx, tokens)
		for i, c := range ctxs {
			n := new(fasthttp.RequestCtx)
			c.Request.CopyTo(&n.Request)
			mine[i] = n
		}
		i := 0
		for pb.Next() {
			c := mine[i%tokens]
			c.Response.Reset()
			h(c)
			if c.Response.StatusCode() != 200 {
				b.Errorf("verify: %d", c.Response.StatusCode())
				return
			}
			i++
		}
	})
	b.StopTimer()
	st := v.Stats()
	if st.KeyMisses > uint64(keys)*2 {
		b.Errorf("%d key cache misses: the hot keys were not kept in the LRU", st.KeyMisses)
	}
}
