package middleware

import (
	"context"
	"errors"
	"net/http"
	"unsafe"

	"github.com/valyala/fasthttp"

	"github.com/jwtgate/jwtgate/engine"
	"github.com/jwtgate/jwtgate/internal/verdict"
)

// Middleware verifies the bearer token of each request. It is immutable and
// safe for concurrent use.
type Middleware struct {
	v        *engine.Verifier
	bodies   *verdict.Bodies // the verify listener's bodies for v
	project  []byte
	onError  func(http.ResponseWriter, *http.Request, error)
	onFastEr func(*fasthttp.RequestCtx, error)
}

// Option configures a Middleware.
type Option func(*Middleware)

// WithProject also requires every token to be for project (the key's
// project, in aud), as ?project= does on the verify listener; other tokens
// get audience_mismatch.
func WithProject(project string) Option {
	return func(m *Middleware) { m.project = []byte(project) }
}

// WithErrorHandler replaces the net/http answer to a refused request. err
// is an *engine.Error (its Code says why; engine.CodeOf extracts it) or
// engine.ErrUnavailable. WriteError writes the default answer.
func WithErrorHandler(h func(w http.ResponseWriter, r *http.Request, err error)) Option {
	return func(m *Middleware) { m.onError = h }
}

// WithFastHTTPErrorHandler is WithErrorHandler for the fasthttp middleware;
// WriteFastHTTPError writes the default answer.
func WithFastHTTPErrorHandler(h func(ctx *fasthttp.RequestCtx, err error)) Option {
	return func(m *Middleware) { m.onFastEr = h }
}

// New returns middleware over v.
func New(v *engine.Verifier, opts ...Option) *Middleware {
	m := &Middleware{v: v, bodies: verdict.NewBodies(v)}
	for _, o := range opts {
		o(m)
	}
	// The default answers are the verify listener's, messages included
	// (they name v's limits and required claims).
	if m.onError == nil {
		m.onError = func(w http.ResponseWriter, _ *http.Request, err error) { writeError(w, err, m.bodies) }
	}
	if m.onFastEr == nil {
		m.onFastEr = func(ctx *fasthttp.RequestCtx, err error) { writeFastHTTPError(ctx, err, m.bodies) }
	}
	return m
}

type claimsKey struct{}

// Claims returns the verified claims of the request whose context is ctx.
// They are valid until the next handler returns: copy what must outlive it.
func Claims(ctx context.Context) (*engine.Claims, bool) {
	c, ok := ctx.Value(claimsKey{}).(*engine.Claims)
	return c, ok
}

// UserValueKey is the fasthttp user value under which the fasthttp
// middleware stores the verified *engine.Claims.
const UserValueKey = "jwtgate.claims"

// FastHTTPClaims returns the verified claims of ctx's request, valid until
// the next handler returns.
func FastHTTPClaims(ctx *fasthttp.RequestCtx) (*engine.Claims, bool) {
	c, ok := ctx.UserValue(UserValueKey).(*engine.Claims)
	return c, ok
}

// verify checks one Authorization header value into c; n is the number of
// Authorization headers.
func (m *Middleware) verify(auth []byte, n int, c *engine.Claims) error {
	switch n {
	case 0:
		return engine.ErrMissingToken
	case 1:
	default:
		return engine.ErrMalformed // more than one Authorization header
	}
	tok, code := verdict.BearerToken(auth, m.v.MaxTokenBytes())
	if code != engine.CodeOK {
		return engine.ErrorFor(code)
	}
	return m.v.VerifyForProject(tok, m.project, c)
}

// Handler wraps next: requests with a valid token reach it, with the claims
// in their context.
func (m *Middleware) Handler(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		vals := r.Header.Values("Authorization")
		var auth []byte
		if len(vals) == 1 {
			// Read-only view of the header: the engine neither keeps nor
			// modifies the token bytes.
			auth = unsafe.Slice(unsafe.StringData(vals[0]), len(vals[0]))
		}
		c := engine.AcquireClaims()
		defer engine.ReleaseClaims(c)
		if err := m.verify(auth, len(vals), c); err != nil {
			m.onError(w, r, err)
			return
		}
		next.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), claimsKey{}, c)))
	})
}

// FastHTTP wraps next: requests with a valid token reach it, with the
// claims in the user value UserValueKey.
func (m *Middleware) FastHTTP(next fasthttp.RequestHandler) fasthttp.RequestHandler {
	return func(ctx *fasthttp.RequestCtx) {
		all := ctx.Request.Header.PeekAll("Authorization")
		var auth []byte
		if len(all) == 1 {
			auth = all[0]
		}
		c := engine.AcquireClaims()
		defer engine.ReleaseClaims(c)
		if err := m.verify(auth, len(all), c); err != nil {
			m.onFastEr(ctx, err)
			return
		}
		ctx.SetUserValue(UserValueKey, c)
		defer ctx.RemoveUserValue(UserValueKey)
		next(ctx)
	}
}

// WriteError writes the verify listener's answer to a refused request: 401
// with the code's JSON body and WWW-Authenticate, or 503 (Retry-After: 1)
// when err is engine.ErrUnavailable. Its messages are the codes' generic
// ones; the middleware's default answer also names the Verifier's limits.
func WriteError(w http.ResponseWriter, err error) { writeError(w, err, nil) }

func writeError(w http.ResponseWriter, err error, bodies *verdict.Bodies) {
	h := w.Header()
	h.Set("Content-Type", verdict.ContentTypeJSON)
	if errors.Is(err, engine.ErrUnavailable) {
		h.Set("Retry-After", "1")
		w.WriteHeader(http.StatusServiceUnavailable)
		w.Write(verdict.UnavailableBody)
		return
	}
	code := engine.CodeOf(err)
	h.Set(verdict.HeaderWWWAuthenticate, string(verdict.WWWAuthenticate(code)))
	w.WriteHeader(http.StatusUnauthorized)
	w.Write(body(bodies, code, err))
}

func body(bodies *verdict.Bodies, code engine.Code, err error) []byte {
	if bodies != nil {
		return bodies.For(code, err)
	}
	return verdict.Body(code)
}

// WriteFastHTTPError is WriteError for fasthttp.
func WriteFastHTTPError(ctx *fasthttp.RequestCtx, err error) { writeFastHTTPError(ctx, err, nil) }

func writeFastHTTPError(ctx *fasthttp.RequestCtx, err error, bodies *verdict.Bodies) {
	ctx.Response.Header.SetContentType(verdict.ContentTypeJSON)
	if errors.Is(err, engine.ErrUnavailable) {
		ctx.Response.Header.Set("Retry-After", "1")
		ctx.SetStatusCode(fasthttp.StatusServiceUnavailable)
		ctx.SetBody(verdict.UnavailableBody)
		return
	}
	code := engine.CodeOf(err)
	ctx.Response.Header.SetBytesV(verdict.HeaderWWWAuthenticate, verdict.WWWAuthenticate(code))
	ctx.SetStatusCode(fasthttp.StatusUnauthorized)
	ctx.SetBody(body(bodies, code, err))
}
