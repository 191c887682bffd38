package server

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"net"
	"net/url"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	typev3 "github.com/envoyproxy/go-control-plane/envoy/type/v3"
	lru "github.com/hashicorp/golang-lru/v2"
	"golang.org/x/net/netutil"
	rpcstatus "google.golang.org/genproto/googleapis/rpc/status"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/encoding"
	grpcproto "google.golang.org/grpc/encoding/proto"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/keepalive"
	"google.golang.org/grpc/mem"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/structpb"

	"github.com/jwtgate/jwtgate/engine"
	"github.com/jwtgate/jwtgate/internal/verdict"
)

// The gRPC listener (Config.GRPCAddr) serves Envoy's external
// authorization API, envoy.service.auth.v3.Authorization/Check (the
// ext_authz HTTP filter in gRPC mode, and Istio's CUSTOM
// AuthorizationPolicy), and the standard gRPC health service.
//
// Check gives the verify listener's verdicts:
//
//   - allowed: status OK and an OkHttpResponse that sets X-Jwt-Project,
//     X-Jwt-Kid, X-Jwt-Subject and the mapped claim headers on the request
//     sent upstream (overwriting any the client sent; identity headers the
//     token does not provide are removed), plus dynamic metadata
//     {"project","kid","sub","exp","claims"} in the ext_authz filter's
//     namespace, for RBAC rules;
//   - denied: status UNAUTHENTICATED and a DeniedHttpResponse 401 with the
//     same JSON body and WWW-Authenticate header as the verify listener;
//   - key store unavailable (or too stale): the RPC itself fails with
//     UNAVAILABLE, so Envoy applies its failure_mode_allow/status_on_error
//     setting; it is never a verdict.
//
// The project a caller requires comes from the route's context extension
// "project" (check_settings.context_extensions in Envoy, per route), and
// from ?project= and X-Jwtgate-Project on the original request, read as the
// verify listener reads them; all that are given must agree.

// GRPCMaxRecvBytes bounds one CheckRequest (the original request's headers
// and attributes; jwtgate never asks Envoy for the body).
const GRPCMaxRecvBytes = 1 << 20

// GRPCHealthService is the service name under which the health service
// reports the Authorization service ("" reports the whole server too).
const GRPCHealthService = "envoy.service.auth.v3.Authorization"

const (
	// ContextExtensionProject names the ext_authz context extension that
	// requires a project (like ?project= on the verify listener).
	ContextExtensionProject = "project"
)

type extAuthz struct {
	authv3.UnimplementedAuthorizationServer
	s      *Server
	stripe atomic.Uint64

	// allowedCache keeps built OK responses (immutable once built, so
	// shared between calls) by identity: a cached token's Check skips
	// rebuilding headers and metadata. Bounded; keyed by a SHA-256 of the
	// kid and payload, so a flood of distinct tokens costs a bounded amount
	// of memory and no collision can lend one token another's identity.
	allowedCache *lru.Cache[[sha256.Size]byte, *authv3.CheckResponse]

	codec *checkCodec

	denied      [32]*authv3.CheckResponse
	deniedBy    map[*engine.Error]*authv3.CheckResponse // detailed errors (which claim)
	badProject  *authv3.CheckResponse
	removeIfNil []string // identity headers a token may not provide
}

var errGRPCUnavailable = status.Error(codes.Unavailable, "the key store is unavailable; try again shortly")

func newExtAuthz(s *Server) *extAuthz {
	a := &extAuthz{s: s, codec: newCheckCodec(), deniedBy: map[*engine.Error]*authv3.CheckResponse{}}
	a.allowedCache, _ = lru.NewWithEvict(grpcAllowedCacheSize, func(_ [sha256.Size]byte, r *authv3.CheckResponse) {
		a.codec.forget(r)
	})
	for _, c := range engine.Codes() {
		a.denied[c] = deniedResponse(codes.Unauthenticated, c.String(), typev3.StatusCode_Unauthorized,
			s.bodies.For(c, nil), headerOpt(verdict.HeaderWWWAuthenticate, string(verdict.WWWAuthenticate(c))))
	}
	for _, e := range s.v.DetailedErrors() {
		a.deniedBy[e] = deniedResponse(codes.Unauthenticated, e.Code.String(), typev3.StatusCode_Unauthorized,
			s.bodies.For(e.Code, e), headerOpt(verdict.HeaderWWWAuthenticate, string(verdict.WWWAuthenticate(e.Code))))
	}
	a.badProject = deniedResponse(codes.InvalidArgument, "invalid_request", typev3.StatusCode_BadRequest,
		bodyBadProject, nil)
	for _, r := range append(a.denied[:], a.badProject) {
		if r != nil {
			a.codec.preEncode(r)
		}
	}
	for _, r := range a.deniedBy { // the denials that name the claim at fault
		a.codec.preEncode(r)
	}
	a.removeIfNil = append(a.removeIfNil, verdict.HeaderSubject)
	for _, ch := range s.claimHeaders {
		a.removeIfNil = append(a.removeIfNil, string(ch.header))
	}
	return a
}

func deniedResponse(rpc codes.Code, msg string, httpCode typev3.StatusCode, body []byte, extra *corev3.HeaderValueOption) *authv3.CheckResponse {
	hdrs := []*corev3.HeaderValueOption{headerOpt("Content-Type", verdict.ContentTypeJSON)}
	if extra != nil {
		hdrs = append(hdrs, extra)
	}
	return &authv3.CheckResponse{
		Status: &rpcstatus.Status{Code: int32(rpc), Message: msg},
		HttpResponse: &authv3.CheckResponse_DeniedResponse{DeniedResponse: &authv3.DeniedHttpResponse{
			Status:  &typev3.HttpStatus{Code: httpCode},
			Headers: hdrs,
			Body:    string(body),
		}},
	}
}

// headerOpt sets name to value, replacing any header of that name.
func headerOpt(name, value string) *corev3.HeaderValueOption {
	return &corev3.HeaderValueOption{
		Header:       &corev3.HeaderValue{Key: name, Value: value},
		AppendAction: corev3.HeaderValueOption_OVERWRITE_IF_EXISTS_OR_ADD,
	}
}

// Check is envoy.service.auth.v3.Authorization/Check.
func (a *extAuthz) Check(_ context.Context, req *authv3.CheckRequest) (*authv3.CheckResponse, error) {
	start := time.Now()
	s := a.s
	stripe := a.stripe.Add(1)
	hreq := req.GetAttributes().GetRequest().GetHttp()
	project, agree, ok := checkProject(req.GetAttributes().GetContextExtensions(), hreq)
	if !ok {
		s.metrics.observe(stripe, resultInvalidRequest, time.Since(start))
		return a.badProject, nil
	}
	token, code := checkToken(hreq, s.v.MaxTokenBytes())
	c := engine.AcquireClaims()
	defer engine.ReleaseClaims(c)
	var err error
	if code == engine.CodeOK {
		err = s.v.VerifyForProject(token, project, c)
		if err == engine.ErrUnavailable {
			s.metrics.observe(stripe, resultUnavailable, time.Since(start))
			return nil, errGRPCUnavailable
		}
		if err == engine.ErrUnknownKID && len(project) > 0 && s.jwksImp != nil {
			s.jwksImp.unknownKID(project) // may refresh the project's JWKS source
		}
		code = codeOf(err)
		if code == engine.CodeOK && !agree {
			code = engine.CodeAudienceMismatch
		}
	}
	if code != engine.CodeOK {
		s.metrics.observe(stripe, int(code), time.Since(start))
		if e, ok := err.(*engine.Error); ok && e.Detail != engine.DetailNone {
			if r := a.deniedBy[e]; r != nil {
				return r, nil
			}
		}
		return a.denied[code], nil
	}
	resp := a.allowedCached(c)
	s.metrics.observe(stripe, int(engine.CodeOK), time.Since(start))
	return resp, nil
}

// checkToken finds the bearer token among the original request's headers:
// the lower-cased header map, or with encode_raw_headers the raw list (in
// which a repeated Authorization header is refused, as on the verify
// listener; the map form has already merged repeats with ",", which the
// token's strict parsing refuses).
func checkToken(h *authv3.AttributeContext_HttpRequest, maxBytes int) ([]byte, engine.Code) {
	if hm := h.GetHeaderMap(); hm != nil && len(hm.GetHeaders()) > 0 {
		var val []byte
		n := 0
		for _, hv := range hm.GetHeaders() {
			if strings.EqualFold(hv.GetKey(), "authorization") {
				n++
				val = hv.GetRawValue()
				if val == nil {
					val = []byte(hv.GetValue())
				}
			}
		}
		switch n {
		case 0:
			return nil, engine.CodeMissingToken
		case 1:
			return verdict.BearerToken(val, maxBytes)
		default:
			return nil, engine.CodeMalformed
		}
	}
	v, ok := h.GetHeaders()["authorization"]
	if !ok {
		return nil, engine.CodeMissingToken
	}
	if len(v) > maxBytes {
		return nil, engine.CodeTokenTooLarge
	}
	return verdict.BearerToken([]byte(v), maxBytes)
}

// checkProject returns the project the caller requires, from the route's
// context extension "project", ?project= in the original request's query
// and its X-Jwtgate-Project header, as the verify listener reads the last
// two: each at most once and matching the project pattern, else ok is
// false (400). project is the first given; agree is false when the given
// ones differ (then no token can be for all of them).
func checkProject(ext map[string]string, h *authv3.AttributeContext_HttpRequest) (project []byte, agree, ok bool) {
	agree = true
	add := func(p []byte) bool {
		if !engine.ValidProjectBytes(p) {
			return false
		}
		if project == nil {
			project = p
		} else if string(p) != string(project) {
			agree = false
		}
		return true
	}
	if p, found := ext[ContextExtensionProject]; found && !add([]byte(p)) {
		return nil, false, false
	}
	if _, query, found := strings.Cut(h.GetPath(), "?"); found && strings.Contains(query, argProject) {
		vals, _ := url.ParseQuery(query) // what parses is judged; the rest is not ours
		switch ps := vals[argProject]; len(ps) {
		case 0:
		case 1:
			if !add([]byte(ps[0])) {
				return nil, false, false
			}
		default:
			return nil, false, false
		}
	}
	var hdr []string
	if hm := h.GetHeaderMap(); hm != nil && len(hm.GetHeaders()) > 0 {
		for _, hv := range hm.GetHeaders() {
			if strings.EqualFold(hv.GetKey(), HeaderRequiredProject) {
				v := string(hv.GetRawValue())
				if hv.GetRawValue() == nil {
					v = hv.GetValue()
				}
				hdr = append(hdr, v)
			}
		}
	} else if v, found := h.GetHeaders()[headerRequiredProjectLower]; found {
		hdr = append(hdr, v) // repeats arrive joined with ",": not a project
	}
	switch len(hdr) {
	case 0:
	case 1:
		if !add([]byte(hdr[0])) {
			return nil, false, false
		}
	default:
		return nil, false, false
	}
	return project, agree, true
}

var headerRequiredProjectLower = strings.ToLower(HeaderRequiredProject)

// grpcAllowedCacheSize bounds the cache of built OK responses.
const grpcAllowedCacheSize = 4096

// allowedCached returns the OK response for c, built once per identity.
func (a *extAuthz) allowedCached(c *engine.Claims) *authv3.CheckResponse {
	h := sha256.New()
	h.Write([]byte(c.KID))
	h.Write([]byte{0})
	h.Write(c.Payload())
	var key [sha256.Size]byte
	h.Sum(key[:0])
	if r, ok := a.allowedCache.Get(key); ok {
		return r
	}
	r := a.allowed(c)
	a.codec.preEncode(r)
	// A call racing this one may have cached its own response meanwhile:
	// keep that one and drop this encoding (Add would replace it without
	// the eviction callback, leaving its encoding in the codec for good).
	if prev, ok, _ := a.allowedCache.PeekOrAdd(key, r); ok {
		a.codec.forget(r)
		return prev
	}
	return r
}

// checkCodec is gRPC's proto codec, except that responses built once and
// shared (denials, cached allowed responses) are sent from their encoding
// made when they were built, instead of being encoded again per call.
type checkCodec struct {
	encoding.CodecV2
	pre sync.Map // *authv3.CheckResponse -> []byte
}

func newCheckCodec() *checkCodec {
	return &checkCodec{CodecV2: encoding.GetCodecV2(grpcproto.Name)}
}

func (c *checkCodec) preEncode(r *authv3.CheckResponse) {
	if b, err := proto.Marshal(r); err == nil {
		c.pre.Store(r, b)
	}
}

func (c *checkCodec) forget(r *authv3.CheckResponse) { c.pre.Delete(r) }

func (c *checkCodec) Marshal(v any) (mem.BufferSlice, error) {
	if r, ok := v.(*authv3.CheckResponse); ok {
		if b, ok := c.pre.Load(r); ok {
			return mem.BufferSlice{mem.SliceBuffer(b.([]byte))}, nil
		}
	}
	return c.CodecV2.Marshal(v)
}

// allowed builds the OK response for verified claims c.
func (a *extAuthz) allowed(c *engine.Claims) *authv3.CheckResponse {
	hdrs := make([]*corev3.HeaderValueOption, 0, 3+len(a.s.claimHeaders))
	hdrs = append(hdrs, headerOpt(verdict.HeaderProject, c.Project), headerOpt(verdict.HeaderKID, c.KID))
	var remove []string
	sub := c.Subject()
	if sub != nil && verdict.HeaderSafe(sub) {
		hdrs = append(hdrs, headerOpt(verdict.HeaderSubject, string(sub)))
	} else {
		remove = append(remove, verdict.HeaderSubject)
	}
	for _, ch := range a.s.claimHeaders {
		if v, ok := verdict.ClaimHeaderValue(c, ch.claim); ok {
			hdrs = append(hdrs, headerOpt(string(ch.header), string(v)))
		} else {
			remove = append(remove, string(ch.header))
		}
	}
	return &authv3.CheckResponse{
		Status: &rpcstatus.Status{Code: int32(codes.OK)},
		HttpResponse: &authv3.CheckResponse_OkResponse{OkResponse: &authv3.OkHttpResponse{
			Headers:         hdrs,
			HeadersToRemove: remove,
		}},
		DynamicMetadata: claimsMetadata(c, sub),
	}
}

// claimsMetadata is the dynamic metadata of an allowed request:
// {"project","kid","sub" (when present),"exp","claims":{...the payload...}}.
// JSON numbers become doubles (protobuf Struct has no integers).
func claimsMetadata(c *engine.Claims, sub []byte) *structpb.Struct {
	fields := map[string]*structpb.Value{
		"project": structpb.NewStringValue(c.Project),
		"kid":     structpb.NewStringValue(c.KID),
		"exp":     structpb.NewNumberValue(float64(c.Expires)),
	}
	if sub != nil {
		fields["sub"] = structpb.NewStringValue(string(sub))
	}
	var payload map[string]any
	if err := json.Unmarshal(c.Payload(), &payload); err == nil {
		if st, err := structpb.NewStruct(payload); err == nil {
			fields["claims"] = structpb.NewStructValue(st)
		}
	}
	return &structpb.Struct{Fields: fields}
}

// grpcListener is the optional gRPC listener's state.
type grpcListener struct {
	srv    *grpc.Server
	health *health.Server
	ln     net.Listener
	stop   chan struct{}
	done   chan struct{}
}

func (s *Server) newGRPCServer(opts ...grpc.ServerOption) *grpcListener {
	opts = append(opts,
		grpc.MaxRecvMsgSize(GRPCMaxRecvBytes),
		grpc.MaxConcurrentStreams(1024),
		grpc.KeepaliveEnforcementPolicy(keepalive.EnforcementPolicy{MinTime: 10 * time.Second, PermitWithoutStream: true}),
		grpc.KeepaliveParams(keepalive.ServerParameters{MaxConnectionIdle: s.cfg.IdleTimeout}),
		grpc.ConnectionTimeout(s.cfg.ReadTimeout),
		// Fixed flow-control windows turn off grpc-go's bandwidth-delay
		// probing (a PING round trip on busy connections): Check messages
		// are small and need no window tuning.
		grpc.InitialWindowSize(1<<20),
		grpc.InitialConnWindowSize(1<<20),
		grpc.SharedWriteBuffer(true),
	)
	a := newExtAuthz(s)
	opts = append(opts, grpc.ForceServerCodecV2(a.codec), grpc.NumStreamWorkers(uint32(runtime.GOMAXPROCS(0))))
	g := &grpcListener{srv: grpc.NewServer(opts...), health: health.NewServer()}
	authv3.RegisterAuthorizationServer(g.srv, a)
	healthpb.RegisterHealthServer(g.srv, g.health)
	g.setServing(false)
	return g
}

func (g *grpcListener) setServing(ok bool) {
	st := healthpb.HealthCheckResponse_NOT_SERVING
	if ok {
		st = healthpb.HealthCheckResponse_SERVING
	}
	g.health.SetServingStatus("", st)
	g.health.SetServingStatus(GRPCHealthService, st)
}

// grpcReadiness keeps the health service in step with /readyz: SERVING
// while the verify listener's /readyz answers 200.
// It is the only writer of the health status once the server is started
// (Start sets the first one, then starts it).
func (s *Server) grpcReadiness(g *grpcListener, last bool) {
	defer close(g.done)
	t := time.NewTicker(grpcHealthInterval)
	defer t.Stop()
	for {
		select {
		case <-g.stop:
			return
		case <-t.C:
		}
		if ok := s.grpcServing(); ok != last {
			g.setServing(ok)
			last = ok
		}
	}
}

// startGRPCHealth sets the health status from the node's readiness and
// starts keeping it up to date.
func (s *Server) startGRPCHealth() {
	if s.grpc == nil {
		return
	}
	ok := s.grpcServing()
	s.grpc.setServing(ok)
	go s.grpcReadiness(s.grpc, ok)
}

const grpcHealthInterval = 250 * time.Millisecond

// grpcServing reports what /readyz does: 200 (ready or degraded) is
// SERVING; not ready, draining or stale is NOT_SERVING.
func (s *Server) grpcServing() bool {
	return s.readiness().Ready
}

func (s *Server) startGRPC() error {
	if s.cfg.GRPCAddr == "" {
		return nil
	}
	ln, err := net.Listen("tcp", s.cfg.GRPCAddr)
	if err != nil {
		return errors.New("server: gRPC listener: " + err.Error())
	}
	var opts []grpc.ServerOption
	if s.tlsVerify != nil {
		opts = append(opts, grpc.Creds(credentials.NewTLS(s.tlsVerify.config("h2"))))
	}
	g := s.newGRPCServer(opts...)
	g.ln = ln
	// At most Concurrency connections, as on the HTTP listeners (each
	// carries at most 1024 concurrent streams).
	ln = netutil.LimitListener(ln, s.cfg.Concurrency)
	g.stop, g.done = make(chan struct{}), make(chan struct{})
	s.grpc = g
	s.serveWG.Add(1)
	go func() {
		defer s.serveWG.Done()
		if err := g.srv.Serve(ln); err != nil && !s.stopped.Load() {
			s.log.Error("listener stopped", "listener", "grpc", "err", err.Error())
		}
	}()
	return nil
}

// stopGRPC turns health to NOT_SERVING, then stops gracefully (in-flight
// Checks finish) or, when ctx ends first, hard.
func (s *Server) stopGRPC(ctx context.Context) error {
	g := s.grpc
	if g == nil {
		return nil
	}
	close(g.stop)
	<-g.done
	g.health.Shutdown()
	done := make(chan struct{})
	go func() { g.srv.GracefulStop(); close(done) }()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		g.srv.Stop()
		<-done
		return ctx.Err()
	}
}

// GRPCAddr returns the bound gRPC address ("" when the listener is off).
func (s *Server) GRPCAddr() string {
	if s.grpc != nil && s.grpc.ln != nil {
		return s.grpc.ln.Addr().String()
	}
	return s.cfg.GRPCAddr
}
