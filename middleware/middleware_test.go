package middleware_test

import (
	"context"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/valyala/fasthttp"

	"github.com/jwtgate/jwtgate/engine"
	"github.com/jwtgate/jwtgate/engine/enginetest"
	"github.com/jwtgate/jwtgate/internal/apitest"
	"github.com/jwtgate/jwtgate/middleware"
	"github.com/jwtgate/jwtgate/server"
	"github.com/jwtgate/jwtgate/server/servertest"
)

// setup registers the keys apitest.EveryCode expects in a memory store and
// returns a verifier over it, as an embedding service would build one.
func setup(t *testing.T) (*engine.MemoryStore, *engine.Verifier) {
	t.Helper()
	st := engine.NewMemoryStore()
	v, err := engine.New(st, engine.WithRequiredClaims(apitest.RequiredClaim))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(v.Close)
	ctx := context.Background()
	for _, k := range []struct {
		kid, name string
	}{{apitest.ActiveKID, "rsa2048-a"}, {apitest.InactiveKID, "rsa2048-b"}} {
		if _, err := v.AddKey(ctx, &engine.Key{KID: k.kid, Project: apitest.Project, Public: &enginetest.Key(k.name).PublicKey}); err != nil {
			t.Fatal(err)
		}
	}
	inactive := engine.StatusInactive
	if _, err := v.UpdateKey(ctx, apitest.Project, apitest.InactiveKID, engine.KeyUpdate{Status: &inactive}); err != nil {
		t.Fatal(err)
	}
	return st, v
}

// serveFast serves h with fasthttp on a loopback port.
func serveFast(t *testing.T, h fasthttp.RequestHandler) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	// Headers must fit a token of the verifier's max size (8 KiB): as the
	// verify listener does, give fasthttp room beyond its 4 KiB default.
	srv := &fasthttp.Server{Handler: h, ReadBufferSize: 16 << 10}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Shutdown() })
	return "http://" + ln.Addr().String()
}

var next = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
	c, ok := middleware.Claims(r.Context())
	if !ok {
		http.Error(w, "no claims", 500)
		return
	}
	sub := c.Subject()
	w.Write([]byte("hello " + string(sub) + " of " + c.Project))
})

func fastNext(ctx *fasthttp.RequestCtx) {
	c, ok := middleware.FastHTTPClaims(ctx)
	if !ok {
		ctx.Error("no claims", 500)
		return
	}
	ctx.SetBodyString("hello " + string(c.Subject()) + " of " + c.Project)
}

// Every refusal is byte for byte the verify listener's answer to the same
// request, from both middlewares; a valid token reaches the handler with
// its claims.
func TestMiddlewareAnswersLikeTheServer(t *testing.T) {
	st, v := setup(t)
	srv := servertest.Start(t, server.Config{Store: st, AdminToken: "middleware-test-admin-token",
		EngineOptions: []engine.Option{engine.WithRequiredClaims(apitest.RequiredClaim)}})
	a, b := enginetest.Key("rsa2048-a"), enginetest.Key("rsa2048-b")
	for _, tc := range apitest.EveryCode(a, b) {
		t.Run(tc.Name, func(t *testing.T) {
			var opts []middleware.Option
			url := "http://" + srv.Addr() + "/v1/verify"
			if tc.Project != "" {
				opts = append(opts, middleware.WithProject(tc.Project))
				url += "?project=" + tc.Project
			}
			mw := middleware.New(v, opts...)
			hs := httptest.NewServer(mw.Handler(next))
			defer hs.Close()
			fs := serveFast(t, mw.FastHTTP(fastNext))
			var hdrs []string
			for _, a := range tc.Authorization {
				hdrs = append(hdrs, "Authorization", a)
			}
			want := apitest.Do(t, "GET", url, nil, hdrs...)
			if want.Status != 401 || !strings.Contains(string(want.Body), `"`+tc.Code+`"`) {
				t.Fatalf("verify listener: %d %s, want 401 %s", want.Status, want.Body, tc.Code)
			}
			for name, base := range map[string]string{"net/http": hs.URL, "fasthttp": fs} {
				got := apitest.Do(t, "GET", base+"/api/orders", nil, hdrs...)
				if got.Status != want.Status || string(got.Body) != string(want.Body) ||
					got.Header.Get("WWW-Authenticate") != want.Header.Get("WWW-Authenticate") ||
					got.Header.Get("Content-Type") != want.Header.Get("Content-Type") {
					t.Errorf("%s: %d %q %s %q\nverify listener: %d %q %s %q", name,
						got.Status, got.Header.Get("WWW-Authenticate"), got.Body, got.Header.Get("Content-Type"),
						want.Status, want.Header.Get("WWW-Authenticate"), want.Body, want.Header.Get("Content-Type"))
				}
			}
		})
	}
	mw := middleware.New(v, middleware.WithProject(apitest.Project))
	hs := httptest.NewServer(mw.Handler(next))
	defer hs.Close()
	fs := serveFast(t, mw.FastHTTP(fastNext))
	for _, base := range []string{hs.URL, fs} {
		r := apitest.Do(t, "DELETE", base+"/api/orders/1", []byte("body"), "Authorization", "Bearer "+apitest.Valid(a))
		if r.Status != 200 || string(r.Body) != "hello user-1 of myapp" {
			t.Fatalf("valid token: %d %s", r.Status, r.Body)
		}
	}
}

type downStore struct{ engine.KeyStore }

func (downStore) Get(context.Context, string) (*engine.Key, error) { return nil, errors.New("down") }

// A store outage is the server's 503, never a verdict, and never reaches
// the handler.
func TestMiddlewareStoreUnavailable(t *testing.T) {
	v, err := engine.New(downStore{engine.NewMemoryStore()})
	if err != nil {
		t.Fatal(err)
	}
	defer v.Close()
	mw := middleware.New(v)
	tok := apitest.Valid(enginetest.Key("rsa2048-a"))
	hs := httptest.NewServer(mw.Handler(next))
	defer hs.Close()
	for _, base := range []string{hs.URL, serveFast(t, mw.FastHTTP(fastNext))} {
		r := apitest.Do(t, "GET", base+"/x", nil, "Authorization", "Bearer "+tok)
		if r.Status != 503 || r.Header.Get("Retry-After") != "1" || !strings.Contains(string(r.Body), `"unavailable"`) || r.Header.Get("WWW-Authenticate") != "" {
			t.Fatalf("outage: %d %v %s", r.Status, r.Header, r.Body)
		}
	}
}

// The error hooks replace the answer and see the code.
func TestMiddlewareErrorHooks(t *testing.T) {
	_, v := setup(t)
	var seen []engine.Code
	mw := middleware.New(v,
		middleware.WithErrorHandler(func(w http.ResponseWriter, r *http.Request, err error) {
			seen = append(seen, engine.CodeOf(err))
			w.Header().Set("Location", "/login")
			w.WriteHeader(http.StatusFound)
		}),
		middleware.WithFastHTTPErrorHandler(func(ctx *fasthttp.RequestCtx, err error) {
			seen = append(seen, engine.CodeOf(err))
			ctx.SetStatusCode(http.StatusTeapot)
		}))
	req := httptest.NewRequest("GET", "/x", nil)
	rec := httptest.NewRecorder()
	mw.Handler(next).ServeHTTP(rec, req)
	if rec.Code != http.StatusFound || rec.Header().Get("Location") != "/login" {
		t.Fatalf("net/http hook: %d %v", rec.Code, rec.Header())
	}
	var ctx fasthttp.RequestCtx
	ctx.Request.Header.Set("Authorization", "Bearer x.y.z")
	mw.FastHTTP(fastNext)(&ctx)
	if ctx.Response.StatusCode() != http.StatusTeapot {
		t.Fatalf("fasthttp hook: %d", ctx.Response.StatusCode())
	}
	if len(seen) != 2 || seen[0] != engine.CodeMissingToken || seen[1] != engine.CodeMalformed {
		t.Fatalf("codes seen by the hooks: %v", seen)
	}
}
