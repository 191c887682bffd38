//go:build !race

package server

import (
	"context"
	"io"
	"log/slog"
	"strings"
	"testing"

	"github.com/jwtgate/jwtgate/engine"
	"github.com/jwtgate/jwtgate/engine/enginetest"
	"github.com/valyala/fasthttp"
)

// newHandlerServer builds a Server (not started) with one key k1 in myapp.
func newHandlerServer(t testing.TB, opts ...engine.Option) *Server {
	t.Helper()
	store := engine.NewMemoryStore()
	s, err := New(Config{
		Store: store, AdminToken: testAdminToken, EngineOptions: opts,
		ClaimHeaders: map[string]string{"groupRef": "X-Group-Ref", "consumerRef": "X-Consumer-Ref"},
		Logger:       slog.New(slog.NewTextHandler(io.Discard, nil)),
	})
	if err != nil {
		t.Fatal(err)
	}
	a := enginetest.Key("rsa2048-a")
	if _, err := s.Verifier().AddKey(context.Background(), &engine.Key{KID: "k1", Project: "myapp", Public: &a.PublicKey}); err != nil {
		t.Fatal(err)
	}
	return s
}

func verifyCtx(tok string, query string) *fasthttp.RequestCtx {
	ctx := new(fasthttp.RequestCtx)
	ctx.Request.Header.SetMethod("GET")
	ctx.Request.SetRequestURI("/v1/verify" + query)
	if tok != "" {
		ctx.Request.Header.Set("Authorization", "Bearer "+tok)
	}
	return ctx
}

func TestVerifyHandlerAllocs(t *testing.T) {
	a := enginetest.Key("rsa2048-a")
	n := now()
	ok := token(a, "k1", "myapp", n, 300, map[string]any{"groupRef": "g1", "consumerRef": "c1"})
	cases := []struct {
		name   string
		opts   []engine.Option
		tok    string
		query  string
		status int
	}{
		{"200/token-cache-on", nil, ok, "", 200},
		{"200/token-cache-off", []engine.Option{engine.WithTokenCacheSize(0)}, ok, "", 200},
		{"200/project-query", []engine.Option{engine.WithTokenCacheSize(0)}, ok, "?project=myapp", 200},
		{"401/expired", nil, token(a, "k1", "myapp", n-1000, 300, nil), "", 401},
		{"401/unknown-kid", nil, token(a, "nope", "myapp", n, 300, nil), "", 401},
		{"401/invalid-signature", nil, token(enginetest.Key("rsa2048-b"), "k1", "myapp", n, 300, nil), "", 401},
		{"401/missing-token", nil, "", "", 401},
		{"401/malformed", nil, strings.Repeat("x", 100), "", 401},
		// Messages that name this server's limit or the claim: prebuilt too.
		{"401/ttl-exceeded", nil, token(a, "k1", "myapp", n, 3600, nil), "", 401},
		{"401/token-too-large", nil, strings.Repeat("x", engine.DefaultMaxTokenBytes+1), "", 401},
		{"401/missing-required-claim", []engine.Option{engine.WithRequiredClaims("groupRef")}, token(a, "k1", "myapp", n, 300, nil), "", 401},
		{"401/required-claim-wrong-type", []engine.Option{engine.WithRequiredClaims("groupRef")}, token(a, "k1", "myapp", n, 300, map[string]any{"groupRef": 1}), "", 401},
		{"401/missing-exp", nil, token(a, "k1", "myapp", n, 300, map[string]any{"exp": nil}), "", 401},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s := newHandlerServer(t, tc.opts...)
			h := s.VerifyHandler()
			ctx := verifyCtx(tc.tok, tc.query)
			for range 3 { // warm caches and pools
				ctx.Response.Reset()
				h(ctx)
			}
			if ctx.Response.StatusCode() != tc.status {
				t.Fatalf("status %d, want %d: %s", ctx.Response.StatusCode(), tc.status, ctx.Response.Body())
			}
			allocs := testing.AllocsPerRun(500, func() {
				ctx.Response.Reset()
				h(ctx)
			})
			// The handler adds no allocation to the engine's own: the
			// engine's cold path (an RSA verification) may allocate its
			// digest (engine/allocs_test.go allows one); everything else is 0.
			c := engine.AcquireClaims()
			defer engine.ReleaseClaims(c)
			tok := []byte(tc.tok)
			project := []byte(strings.TrimPrefix(tc.query, "?project="))
			engineAllocs := testing.AllocsPerRun(500, func() { _ = s.Verifier().VerifyForProject(tok, project, c) })
			if allocs != engineAllocs {
				t.Fatalf("handler: %v allocations per request; the engine alone: %v; want the handler to add none", allocs, engineAllocs)
			}
			if allocs > 1 {
				t.Fatalf("%v allocations per request", allocs)
			}
			t.Logf("%v allocs/request (engine alone %v)", allocs, engineAllocs)
		})
	}
}

func BenchmarkVerifyHandler(b *testing.B) {
	a := enginetest.Key("rsa2048-a")
	n := now()
	ok := token(a, "k1", "myapp", n, 300, map[string]any{"groupRef": "g1", "consumerRef": "c1"})
	for _, bc := range []struct {
		name string
		opts []engine.Option
		tok  string
	}{
		{"path=token-cache-hit", nil, ok},
		{"path=cold", []engine.Option{engine.WithTokenCacheSize(0)}, ok},
		{"path=expired", nil, token(a, "k1", "myapp", n-1000, 300, nil)},
		{"path=unknown-kid", nil, token(a, "nope", "myapp", n, 300, nil)},
	} {
		b.Run(bc.name, func(b *testing.B) {
			s := newHandlerServer(b, bc.opts...)
			h := s.VerifyHandler()
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				ctx := verifyCtx(bc.tok, "")
				for pb.Next() {
					ctx.Response.Reset()
					h(ctx)
				}
			})
		})
	}
}

// bareHandler is the baseline: a fasthttp handler answering 200.
func bareHandler(ctx *fasthttp.RequestCtx) { ctx.SetBody(bodyOK) }

func BenchmarkBareHandler(b *testing.B) {
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		ctx := verifyCtx("x", "")
		for pb.Next() {
			ctx.Response.Reset()
			bareHandler(ctx)
		}
	})
}

// The forward-auth shapes (issue 11 item 1: any method, a path below
// /v1/verify/, the project in a header) and a refused project add no
// allocation to the hot path.
func TestForwardAuthHandlerAllocs(t *testing.T) {
	a := enginetest.Key("rsa2048-a")
	ok := token(a, "k1", "myapp", now(), 300, nil)
	cases := []struct {
		name, method, uri string
		headers           []string
		status            int
	}{
		{"envoy-path-prefix", "DELETE", "/v1/verify/api/orders/42?x=1&y=2", nil, 200},
		{"header-project", "PUT", "/v1/verify/api", []string{HeaderRequiredProject, "myapp"}, 200},
		{"header-and-query", "PATCH", "/v1/verify?project=myapp", []string{HeaderRequiredProject, "myapp"}, 200},
		{"header-mismatch", "GET", "/v1/verify?project=myapp", []string{HeaderRequiredProject, "other"}, 401},
		{"traefik", "GET", "/v1/verify", []string{"X-Forwarded-Method", "POST", "X-Forwarded-Uri", "/api/x?y=1"}, 200},
		{"400/repeated-project", "GET", "/v1/verify?project=myapp&project=other", nil, 400},
		{"400/empty-header", "GET", "/v1/verify", []string{HeaderRequiredProject, ""}, 400},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s := newHandlerServer(t)
			h := s.VerifyHandler()
			ctx := new(fasthttp.RequestCtx)
			ctx.Request.Header.SetMethod(tc.method)
			ctx.Request.SetRequestURI(tc.uri)
			ctx.Request.Header.Set("Authorization", "Bearer "+ok)
			for i := 0; i+1 < len(tc.headers); i += 2 {
				ctx.Request.Header.Set(tc.headers[i], tc.headers[i+1])
			}
			for range 3 {
				ctx.Response.Reset()
				h(ctx)
			}
			if ctx.Response.StatusCode() != tc.status {
				t.Fatalf("status %d, want %d: %s", ctx.Response.StatusCode(), tc.status, ctx.Response.Body())
			}
			if allocs := testing.AllocsPerRun(500, func() { ctx.Response.Reset(); h(ctx) }); allocs != 0 {
				t.Fatalf("%v allocations per request, want 0 (a cached token)", allocs)
			}
		})
	}
}
