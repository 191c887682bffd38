package server

import (
	"context"
	"strconv"
	"time"

	"github.com/jwtgate/jwtgate/engine"
	"github.com/jwtgate/jwtgate/internal/verdict"
	"github.com/valyala/fasthttp"
)

// Prebuilt byte slices for the fixed parts of verify responses.
var (
	ctJSON  = []byte("application/json")
	ctText  = []byte("text/plain; charset=utf-8")
	hdrAuth = "Authorization"

	hdrProject = []byte(verdict.HeaderProject)
	hdrKID     = []byte(verdict.HeaderKID)
	hdrSubject = []byte(verdict.HeaderSubject)
	hdrWWWAuth = []byte(verdict.HeaderWWWAuthenticate)
	hdrAllow   = []byte("Allow")
	hdrRetry   = []byte("Retry-After")
	hdrCache   = []byte("Cache-Control")

	okPrefix     = []byte(`{"valid":true,"project":"`)
	okKID        = []byte(`","kid":"`)
	okSub        = []byte(`","sub":"`)
	okExp        = []byte(`","exp":`)
	okClaims     = []byte(`,"claims":`)
	okSuffix     = []byte(`}`)
	allowGetHead = []byte("GET, HEAD")
	retryOne     = []byte("1")
	jwksCache    = []byte("public, max-age=60")

	bodyUnavailable = verdict.UnavailableBody
	bodyNotFound    = []byte(`{"error":"not_found","message":"no such route"}`)
	bodyMethod      = []byte(`{"error":"method_not_allowed","message":"this route does not accept that method"}`)
	bodyOK          = []byte("ok\n")
	bodyReady       = []byte("ready\n")
	bodyNotReady    = []byte("not ready\n")
	bodyDegraded    = []byte("degraded\n")
	bodyNoProject   = []byte(`{"error":"not_found","message":"no keys are registered for this project"}`)
	bodyJWKSFail    = []byte(`{"error":"unavailable","message":"the key store is unavailable; try again shortly"}`)
	bodyBadProject  = []byte(`{"valid":false,"error":"invalid_request","message":"?project= and the X-Jwtgate-Project header may each be given at most once, non-empty, matching ^[a-z0-9][a-z0-9_-]{0,62}$"}`)
)

// VerifyHandler returns the verify listener's handler: /v1/verify (and
// every path below /v1/verify/, any method), the per-project JWKS, /healthz
// and /readyz. Usable on its own (e.g. over an in-memory listener in
// benchmarks).
func (s *Server) VerifyHandler() fasthttp.RequestHandler { return s.handleVerifyListener }

func (s *Server) handleVerifyListener(ctx *fasthttp.RequestCtx) {
	path := rawPath(ctx)
	if isVerifyPath(path) {
		// Forward-auth of any shape: any method, any path below the
		// endpoint (Envoy's HTTP ext_authz keeps the method and appends
		// the original path; Traefik and Caddy send GET with
		// X-Forwarded-Method/-Uri). The verdict depends only on the token
		// and the required project; a body is never read.
		s.verify(ctx)
		return
	}
	if p := checkPath(path); p != pathOK {
		refusePath(ctx, p)
		return
	}
	switch string(path) {
	case "/healthz":
		if !getOrHead(ctx) {
			return
		}
		ctx.Response.Header.SetContentTypeBytes(ctText)
		ctx.SetBody(bodyOK)
		return
	case "/readyz":
		if !getOrHead(ctx) {
			return
		}
		s.readyz(ctx)
		return
	}
	if project, ok := jwksProject(path); ok {
		if !getOrHead(ctx) {
			return
		}
		s.jwks(ctx, project)
		return
	}
	notFound(ctx)
}

func getOrHead(ctx *fasthttp.RequestCtx) bool {
	if ctx.IsGet() || ctx.IsHead() {
		return true
	}
	methodNotAllowed(ctx, allowGetHead)
	return false
}

func methodNotAllowed(ctx *fasthttp.RequestCtx, allow []byte) {
	ctx.SetStatusCode(fasthttp.StatusMethodNotAllowed)
	ctx.Response.Header.SetBytesKV(hdrAllow, allow)
	ctx.Response.Header.SetContentTypeBytes(ctJSON)
	ctx.SetBody(bodyMethod)
}

func notFound(ctx *fasthttp.RequestCtx) {
	ctx.SetStatusCode(fasthttp.StatusNotFound)
	ctx.Response.Header.SetContentTypeBytes(ctJSON)
	ctx.SetBody(bodyNotFound)
}

// bearerToken extracts the token from the request's Authorization header.
// It returns the code to answer with when there is no usable token.
func bearerToken(h *fasthttp.RequestHeader, maxBytes int) ([]byte, engine.Code) {
	all := h.PeekAll(hdrAuth)
	switch len(all) {
	case 0:
		return nil, engine.CodeMissingToken
	case 1:
	default:
		return nil, engine.CodeMalformed // more than one Authorization header
	}
	return verdict.BearerToken(all[0], maxBytes)
}

// codeOf is engine.CodeOf without its errors.As, which allocates: the
// verifier returns its sentinels unwrapped.
func codeOf(err error) engine.Code {
	if err == nil {
		return engine.CodeOK
	}
	if e, ok := err.(*engine.Error); ok {
		return e.Code
	}
	return engine.CodeOf(err)
}

// verify is the hot path. It allocates nothing on its 200 and 401 paths.
func (s *Server) verify(ctx *fasthttp.RequestCtx) {
	start := time.Now()
	token, code := bearerToken(&ctx.Request.Header, s.v.MaxTokenBytes())
	project, other, ok := requiredProject(ctx)
	if !ok {
		ctx.SetStatusCode(fasthttp.StatusBadRequest)
		ctx.Response.Header.SetContentTypeBytes(ctJSON)
		ctx.SetBody(bodyBadProject)
		s.metrics.observe(ctx.ConnID(), resultInvalidRequest, time.Since(start))
		return
	}
	var err error
	c := engine.AcquireClaims()
	if code == engine.CodeOK {
		err = s.v.VerifyForProject(token, project, c)
		if err == engine.ErrUnavailable {
			engine.ReleaseClaims(c)
			s.metrics.observe(ctx.ConnID(), resultUnavailable, time.Since(start))
			ctx.SetStatusCode(fasthttp.StatusServiceUnavailable)
			ctx.Response.Header.SetContentTypeBytes(ctJSON)
			ctx.Response.Header.SetBytesKV(hdrRetry, retryOne)
			ctx.SetBody(bodyUnavailable)
			return
		}
		if err == engine.ErrUnknownKID && project != nil && s.jwksImp != nil {
			s.jwksImp.unknownKID(project) // may refresh the project's JWKS source
		}
		code = codeOf(err)
		if code == engine.CodeOK && other != nil && string(other) != string(project) {
			// The query and the header name different projects: no
			// token is for both.
			code = engine.CodeAudienceMismatch
		}
	}
	if code != engine.CodeOK {
		engine.ReleaseClaims(c)
		ctx.SetStatusCode(fasthttp.StatusUnauthorized)
		ctx.Response.Header.SetContentTypeBytes(ctJSON)
		ctx.Response.Header.SetBytesKV(hdrWWWAuth, verdict.WWWAuthenticate(code))
		ctx.SetBody(s.bodies.For(code, err))
		s.metrics.observe(ctx.ConnID(), int(code), time.Since(start))
		return
	}
	s.writeValid(ctx, c)
	engine.ReleaseClaims(c)
	s.metrics.observe(ctx.ConnID(), int(engine.CodeOK), time.Since(start))
}

// HeaderRequiredProject names the project a token must be for, as
// ?project= does; for proxies that can add a header to the authorization
// request but not a query parameter (Envoy's HTTP ext_authz appends the
// original path and query to its path_prefix).
const HeaderRequiredProject = "X-Jwtgate-Project"

const argProject = "project"

// requiredProject returns the project the caller requires from ?project=
// and the X-Jwtgate-Project header (nil: any project). Each may be given at
// most once, non-empty and matching the project pattern; else ok is false
// (400: a proxy that appends or templates a parameter must not fail open).
// When both are given, project is the query's and other the header's; the
// caller refuses a token unless they are equal.
func requiredProject(ctx *fasthttp.RequestCtx) (project, other []byte, ok bool) {
	n := 0
	for k, v := range ctx.QueryArgs().All() {
		if string(k) == argProject {
			n++
			project = v
		}
	}
	if n > 1 || n == 1 && !engine.ValidProjectBytes(project) {
		return nil, nil, false
	}
	switch hs := ctx.Request.Header.PeekAll(HeaderRequiredProject); len(hs) {
	case 0:
	case 1:
		if !engine.ValidProjectBytes(hs[0]) {
			return nil, nil, false
		}
		if n == 0 {
			project = hs[0]
		} else {
			other = hs[0]
		}
	default:
		return nil, nil, false
	}
	return project, other, true
}

func (s *Server) writeValid(ctx *fasthttp.RequestCtx, c *engine.Claims) {
	resp := &ctx.Response
	resp.SetStatusCode(fasthttp.StatusOK)
	resp.Header.SetContentTypeBytes(ctJSON)
	resp.Header.SetBytesK(hdrProject, c.Project)
	resp.Header.SetBytesK(hdrKID, c.KID)
	sub := c.Subject()
	if sub != nil && verdict.HeaderSafe(sub) {
		resp.Header.SetBytesKV(hdrSubject, sub)
	}
	for i := range s.claimHeaders {
		ch := &s.claimHeaders[i]
		if v, ok := verdict.ClaimHeaderValue(c, ch.claim); ok {
			resp.Header.SetBytesKV(ch.header, v)
		}
	}
	resp.ResetBody()
	resp.AppendBody(okPrefix)
	resp.AppendBodyString(c.Project)
	resp.AppendBody(okKID)
	resp.AppendBodyString(c.KID)
	if raw, ok := c.Raw("sub"); ok && sub != nil {
		resp.AppendBody(okSub)
		resp.AppendBody(raw) // still escaped JSON string content
	}
	resp.AppendBody(okExp)
	var nb [24]byte
	resp.AppendBody(strconv.AppendInt(nb[:0], c.Expires, 10))
	resp.AppendBody(okClaims)
	resp.AppendBody(c.Payload())
	resp.AppendBody(okSuffix)
}

// readiness is the node's state, as /readyz (state only) and the admin
// GET /v1/status (with the cause) report it.
type readiness struct {
	State string `json:"state"` // ready, degraded, stale (past --max-stale: 503), not ready, draining
	Ready bool   `json:"ready"` // /readyz answers 200
	Store *struct {
		Healthy bool   `json:"healthy"`
		Detail  string `json:"detail,omitempty"`
	} `json:"store,omitempty"` // for stores that report their health
}

func (s *Server) readiness() readiness {
	var r readiness
	switch {
	case s.draining.Load():
		r.State = "draining"
	case !s.ready.Load():
		r.State = "not ready"
	default:
		r.State, r.Ready = "ready", true
	}
	if hr, ok := s.store.(HealthReporter); ok {
		healthy, detail := hr.Health()
		r.Store = &struct {
			Healthy bool   `json:"healthy"`
			Detail  string `json:"detail,omitempty"`
		}{healthy, detail}
		if !healthy && r.Ready {
			r.State = "degraded"
		}
		s.logHealth(healthy, detail)
	}
	if r.Ready && s.v.Stale() {
		// The store cannot confirm it has seen every key change within
		// the staleness bound: verifies answer 503, and so does /readyz.
		r.State, r.Ready = "stale", false
	}
	return r
}

// logHealth logs the store's health when it changes (the public /readyz
// does not say why a node is degraded: the log and /v1/status do).
func (s *Server) logHealth(healthy bool, detail string) {
	if healthy {
		detail = ""
	}
	last := s.lastHealth.Load()
	if last != nil && *last == detail {
		return
	}
	if !s.lastHealth.CompareAndSwap(last, &detail) {
		return
	}
	if healthy {
		if last != nil {
			s.log.Info("key store healthy again")
		}
		return
	}
	s.log.Warn("key store degraded; verifying from caches", "detail", detail)
}

// readyz answers only the state: ready and degraded (still verifying from
// caches) are 200, not ready (starting, draining) is 503. The cause of a
// degraded state can name the database (user, host, port): it goes to the
// log and to the admin listener, never to this public endpoint.
func (s *Server) readyz(ctx *fasthttp.RequestCtx) {
	ctx.Response.Header.SetContentTypeBytes(ctText)
	r := s.readiness()
	switch {
	case !r.Ready:
		ctx.SetStatusCode(fasthttp.StatusServiceUnavailable)
		ctx.SetBody(bodyNotReady)
	case r.State == "degraded":
		ctx.SetBody(bodyDegraded)
	default:
		ctx.SetBody(bodyReady)
	}
}

// jwksProject extracts {project} from /v1/projects/{project}/jwks.json.
func jwksProject(path []byte) (string, bool) {
	const pre, suf = "/v1/projects/", "/jwks.json"
	if len(path) <= len(pre)+len(suf) || string(path[:len(pre)]) != pre || string(path[len(path)-len(suf):]) != suf {
		return "", false
	}
	p := string(path[len(pre) : len(path)-len(suf)])
	return p, engine.ValidProject(p)
}

func (s *Server) jwks(ctx *fasthttp.RequestCtx, project string) {
	ctx.Response.Header.SetContentTypeBytes(ctJSON)
	rctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	body, found, err := s.v.JWKS(rctx, project)
	if err != nil {
		if ok, suppressed := s.storeFailLog.allow(); ok {
			s.log.Error("jwks: listing keys failed", withSuppressed([]any{"project", project, "err", err.Error()}, suppressed)...)
		}
		ctx.SetStatusCode(fasthttp.StatusServiceUnavailable)
		ctx.SetBody(bodyJWKSFail)
		return
	}
	if !found {
		ctx.SetStatusCode(fasthttp.StatusNotFound)
		ctx.SetBody(bodyNoProject)
		return
	}
	ctx.Response.Header.SetBytesKV(hdrCache, jwksCache)
	ctx.SetBody(body)
}
