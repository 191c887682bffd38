package bench

import (
	"context"
	"io"
	"log/slog"
	"net"
	"sync/atomic"
	"testing"

	"github.com/valyala/fasthttp"
	"github.com/valyala/fasthttp/fasthttputil"

	"github.com/jwtgate/jwtgate/engine"
	et "github.com/jwtgate/jwtgate/engine/enginetest"
	"github.com/jwtgate/jwtgate/server"
)

// bareBody is what the bare handler answers: about the size of a verify
// response's JSON.
var bareBody = []byte(`{"valid":true,"project":"bench","kid":"bench-2048","sub":"user-1","exp":1700000000,"claims":{"aud":["bench"],"exp":1700000000,"iat":1699996400,"jti":"t-0","sub":"user-1"}}`)

// serveInmemory serves h on an in-memory listener and returns a client for
// it; cleanup stops both.
func serveInmemory(b *testing.B, h fasthttp.RequestHandler) *fasthttp.HostClient {
	ln := fasthttputil.NewInmemoryListener()
	srv := &fasthttp.Server{Handler: h, NoDefaultServerHeader: true}
	done := make(chan struct{})
	go func() { defer close(done); _ = srv.Serve(ln) }()
	b.Cleanup(func() {
		_ = srv.Shutdown()
		_ = ln.Close()
		<-done
	})
	return &fasthttp.HostClient{
		Addr:     "jwtgate.bench",
		Dial:     func(string) (net.Conn, error) { return ln.Dial() },
		MaxConns: 64,
	}
}

// BenchmarkServer: GET /v1/verify through the real server's VerifyHandler
// (server.New with a MemoryStore, default options but WithMaxTTL) over a
// fasthttputil in-memory listener, with a keep-alive fasthttp client;
// path=cold cycles PoolSize tokens with the token cache off, path=cached
// repeats one token, path=bare is a fasthttp handler that answers 200 with a
// fixed JSON body (the HTTP floor).
func BenchmarkServer(b *testing.B) {
	for _, path := range []string{"cold", "cached", "bare"} {
		b.Run("path="+path, func(b *testing.B) {
			for _, mode := range modes {
				b.Run("mode="+mode, func(b *testing.B) {
					toks := Pool(2048)
					var h fasthttp.RequestHandler
					if path == "bare" {
						h = func(ctx *fasthttp.RequestCtx) {
							ctx.SetContentType("application/json")
							ctx.SetBody(bareBody)
						}
					} else {
						opts := []engine.Option{engine.WithMaxTTL(TokenTTL)}
						if path == "cold" {
							opts = append(opts, engine.WithTokenCacheSize(0))
						} else {
							toks = toks[:1]
						}
						s, err := server.New(server.Config{
							Store:         engine.NewMemoryStore(),
							AdminToken:    "bench-admin-token-0123456789",
							EngineOptions: opts,
							Logger:        slog.New(slog.NewTextHandler(io.Discard, nil)),
						})
						if err != nil {
							b.Fatal(err)
						}
						k := &engine.Key{KID: KID(2048), Project: Project, Label: "bench", Public: &et.Key(KeyName(2048)).PublicKey}
						if _, err := s.Verifier().AddKey(context.Background(), k); err != nil {
							b.Fatal(err)
						}
						h = s.VerifyHandler()
					}
					c := serveInmemory(b, h)
					auth := make([][]byte, len(toks))
					for i, t := range toks {
						auth[i] = append([]byte("Bearer "), t...)
					}
					do := func(req *fasthttp.Request, resp *fasthttp.Response, i int) int {
						req.Header.SetBytesV("Authorization", auth[i])
						if err := c.Do(req, resp); err != nil {
							return -1
						}
						return resp.StatusCode()
					}
					newReq := func() (*fasthttp.Request, *fasthttp.Response) {
						req, resp := fasthttp.AcquireRequest(), fasthttp.AcquireResponse()
						req.SetRequestURI("http://jwtgate.bench/v1/verify")
						return req, resp
					}
					req, resp := newReq()
					for i := range auth {
						if st := do(req, resp, i); st != fasthttp.StatusOK {
							b.Fatalf("setup: status %d: %s", st, resp.Body())
						}
					}
					b.ReportAllocs()
					b.ResetTimer()
					if mode == "serial" {
						for i := range b.N {
							if st := do(req, resp, i%len(auth)); st != fasthttp.StatusOK {
								b.Fatalf("status %d", st)
							}
						}
						return
					}
					var start, bad atomic.Int64
					b.RunParallel(func(pb *testing.PB) {
						req, resp := newReq()
						defer fasthttp.ReleaseRequest(req)
						defer fasthttp.ReleaseResponse(resp)
						n := len(auth)
						i := int(start.Add(int64(n/2+1))) % n
						for pb.Next() {
							if do(req, resp, i) != fasthttp.StatusOK {
								bad.Add(1)
							}
							if i++; i == n {
								i = 0
							}
						}
					})
					if n := bad.Load(); n > 0 {
						b.Fatalf("%d requests failed", n)
					}
				})
			}
		})
	}
}
