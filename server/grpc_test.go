package server

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/status"

	"github.com/jwtgate/jwtgate/engine"
	"github.com/jwtgate/jwtgate/engine/enginetest"
	"github.com/jwtgate/jwtgate/internal/apitest"
)

// grpcConn dials the server's gRPC listener with a real client over
// loopback TCP.
func grpcConn(t *testing.T, addr string, opts ...grpc.DialOption) *grpc.ClientConn {
	t.Helper()
	if len(opts) == 0 {
		opts = []grpc.DialOption{grpc.WithTransportCredentials(insecure.NewCredentials())}
	}
	cc, err := grpc.NewClient("passthrough:///"+addr, opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cc.Close() })
	return cc
}

// checkReq is a CheckRequest as Envoy's HTTP ext_authz filter sends it:
// lower-cased header map, the original path with its query.
func checkReq(path string, headers map[string]string) *authv3.CheckRequest {
	return &authv3.CheckRequest{Attributes: &authv3.AttributeContext{
		Request: &authv3.AttributeContext_Request{Http: &authv3.AttributeContext_HttpRequest{
			Method: "PUT", Path: path, Host: "api.example", Scheme: "https", Headers: headers,
		}},
	}}
}

func check(t *testing.T, c authv3.AuthorizationClient, req *authv3.CheckRequest) *authv3.CheckResponse {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	resp, err := c.Check(ctx, req)
	if err != nil {
		t.Fatalf("Check: %v", err)
	}
	return resp
}

func headerMap(hs []*corev3.HeaderValueOption) map[string]string {
	m := map[string]string{}
	for _, h := range hs {
		if h.GetAppendAction() != corev3.HeaderValueOption_OVERWRITE_IF_EXISTS_OR_ADD {
			m["bad-append-action:"+h.GetHeader().GetKey()] = h.GetAppendAction().String()
		}
		m[h.GetHeader().GetKey()] = h.GetHeader().GetValue()
	}
	return m
}

// mustDenied asserts a denial that matches, byte for byte, what the verify
// listener answers to the same request (httpResp).
func mustDenied(t *testing.T, resp *authv3.CheckResponse, code string, httpResp response) {
	t.Helper()
	if got := codes.Code(resp.GetStatus().GetCode()); got != codes.Unauthenticated {
		t.Fatalf("rpc status %v, want Unauthenticated (%s)", got, code)
	}
	if resp.GetStatus().GetMessage() != code {
		t.Fatalf("rpc status message %q, want %q", resp.GetStatus().GetMessage(), code)
	}
	d := resp.GetDeniedResponse()
	if d == nil {
		t.Fatalf("no DeniedHttpResponse: %v", resp)
	}
	if d.GetStatus().GetCode() != 401 {
		t.Fatalf("http status %v, want 401", d.GetStatus().GetCode())
	}
	mustCode(t, response{Status: 401, Header: httpResp.Header.Clone(), Body: []byte(d.GetBody())}, code)
	if d.GetBody() != string(httpResp.Body) {
		t.Fatalf("body %s differs from the verify listener's %s", d.GetBody(), httpResp.Body)
	}
	h := headerMap(d.GetHeaders())
	if h["WWW-Authenticate"] != httpResp.Header.Get("WWW-Authenticate") || h["Content-Type"] != "application/json" {
		t.Fatalf("headers %v, want WWW-Authenticate %q and JSON", h, httpResp.Header.Get("WWW-Authenticate"))
	}
}

// Every error code, with the requests the other ways into jwtgate are
// tested with (apitest.EveryCode): each denial matches the verify
// listener's answer to the same request.
func TestGRPCCheckEveryErrorCode(t *testing.T) {
	ts := startServer(t, Config{GRPCAddr: "127.0.0.1:0", EngineOptions: []engine.Option{engine.WithRequiredClaims(apitest.RequiredClaim)}})
	c := authv3.NewAuthorizationClient(grpcConn(t, ts.srv.GRPCAddr()))
	a, b := enginetest.Key("rsa2048-a"), enginetest.Key("rsa2048-b")
	ts.addKey(apitest.Project, a, apitest.ActiveKID, "")
	ts.addKey(apitest.Project, b, apitest.InactiveKID, "")
	if r := ts.adminDo("PATCH", "/v1/projects/"+apitest.Project+"/keys/"+apitest.InactiveKID, map[string]any{"status": "inactive"}); r.Status != 200 {
		t.Fatalf("patch: %d %s", r.Status, r.Body)
	}
	if resp := check(t, c, checkReq("/", map[string]string{"authorization": "Bearer " + apitest.Valid(a)})); codes.Code(resp.GetStatus().GetCode()) != codes.OK {
		t.Fatalf("valid token: %v", resp.GetStatus())
	}
	seen := map[string]bool{}
	for _, tc := range apitest.EveryCode(a, b) {
		t.Run(tc.Name, func(t *testing.T) {
			path, query := "/api/orders", ""
			if tc.Project != "" {
				query = "?project=" + tc.Project
			}
			headers := map[string]string{"x-other": "1"}
			var hdrs []string
			for _, v := range tc.Authorization {
				hdrs = append(hdrs, "Authorization", v)
			}
			if len(tc.Authorization) > 0 {
				// Envoy merges repeated headers with ",".
				headers["authorization"] = strings.Join(tc.Authorization, ",")
			}
			resp := check(t, c, checkReq(path+query, headers))
			hr := do(t, "GET", ts.base+"/v1/verify"+query, nil, hdrs...)
			mustDenied(t, resp, tc.Code, hr)
			seen[tc.Code] = true
		})
	}
	for _, code := range engine.Codes() {
		if !seen[code.String()] {
			t.Errorf("code %s not covered over gRPC", code)
		}
	}
}

func TestGRPCCheckAllowed(t *testing.T) {
	ts := startServer(t, Config{GRPCAddr: "127.0.0.1:0", ClaimHeaders: map[string]string{"groupRef": "X-Group-Ref", "tier": "X-Tier"}})
	c := authv3.NewAuthorizationClient(grpcConn(t, ts.srv.GRPCAddr()))
	a := enginetest.Key("rsa2048-a")
	ts.addKey("myapp", a, "k1", "")
	n := now()
	tok := token(a, "k1", "myapp", n, 300, map[string]any{"groupRef": "g-1", "tier": 3, "sub": "user-7", "roles": []string{"admin"}})
	// The route requires the project through a context extension; the
	// client tries to smuggle identity headers in.
	req := checkReq("/api/orders/42", map[string]string{"authorization": "Bearer " + tok, "x-jwt-project": "evil", "x-group-ref": "evil"})
	req.Attributes.ContextExtensions = map[string]string{"project": "myapp"}
	resp := check(t, c, req)
	if codes.Code(resp.GetStatus().GetCode()) != codes.OK {
		t.Fatalf("status %v: %v", resp.GetStatus(), resp)
	}
	ok := resp.GetOkResponse()
	if ok == nil {
		t.Fatalf("no OkHttpResponse: %v", resp)
	}
	h := headerMap(ok.GetHeaders())
	want := map[string]string{"X-Jwt-Project": "myapp", "X-Jwt-Kid": "k1", "X-Jwt-Subject": "user-7", "X-Group-Ref": "g-1", "X-Tier": "3"}
	if len(h) != len(want) {
		t.Fatalf("headers %v, want %v", h, want)
	}
	for k, v := range want {
		if h[k] != v {
			t.Fatalf("header %s = %q, want %q (all: %v)", k, h[k], v, h)
		}
	}
	// The same headers as the verify listener's 200.
	hr := mustOKResp(t, ts, tok)
	for k, v := range want {
		if hr.Header.Get(k) != v {
			t.Fatalf("verify listener %s = %q, gRPC %q", k, hr.Header.Get(k), v)
		}
	}
	if len(ok.GetHeadersToRemove()) != 0 {
		t.Fatalf("headers_to_remove %v with every identity header present", ok.GetHeadersToRemove())
	}
	md := resp.GetDynamicMetadata().AsMap()
	claims, _ := md["claims"].(map[string]any)
	if md["project"] != "myapp" || md["kid"] != "k1" || md["sub"] != "user-7" || md["exp"] != float64(n+300) ||
		claims["groupRef"] != "g-1" || claims["tier"] != float64(3) || claims["iat"] != float64(n) {
		t.Fatalf("dynamic metadata %v", md)
	}
	if roles, _ := claims["roles"].([]any); len(roles) != 1 || roles[0] != "admin" {
		t.Fatalf("roles in metadata: %v", claims["roles"])
	}

	// No sub, no groupRef: those identity headers are removed from the
	// upstream request rather than left to the client.
	tok2 := token(a, "k1", "myapp", n, 300, map[string]any{"sub": nil, "tier": true})
	resp = check(t, c, checkReq("/", map[string]string{"authorization": "bearer " + tok2}))
	ok = resp.GetOkResponse()
	if codes.Code(resp.GetStatus().GetCode()) != codes.OK || ok == nil {
		t.Fatalf("status %v", resp.GetStatus())
	}
	rm := map[string]bool{}
	for _, h := range ok.GetHeadersToRemove() {
		rm[h] = true
	}
	if len(rm) != 2 || !rm["X-Jwt-Subject"] || !rm["X-Group-Ref"] {
		t.Fatalf("headers_to_remove %v, want X-Jwt-Subject and X-Group-Ref", ok.GetHeadersToRemove())
	}
	if h := headerMap(ok.GetHeaders()); h["X-Tier"] != "true" || h["X-Jwt-Subject"] != "" {
		t.Fatalf("headers %v", h)
	}
}

func mustOKResp(t *testing.T, ts *testServer, tok string) response {
	t.Helper()
	r := ts.verify(tok)
	mustOK(t, r)
	return r
}

func TestGRPCCheckProjectRequirement(t *testing.T) {
	ts := startServer(t, Config{GRPCAddr: "127.0.0.1:0"})
	c := authv3.NewAuthorizationClient(grpcConn(t, ts.srv.GRPCAddr()))
	a := enginetest.Key("rsa2048-a")
	ts.addKey("myapp", a, "k1", "")
	tok := token(a, "k1", "myapp", now(), 300, nil)
	auth := map[string]string{"authorization": "Bearer " + tok}
	bad := ts.verify(token(a, "k1", "other", now(), 300, nil)) // an audience_mismatch from HTTP
	for _, tc := range []struct {
		name, path string
		ext        map[string]string
		want       codes.Code
		header     string // X-Jwtgate-Project on the original request
	}{
		{"header match", "/v1/x", nil, codes.OK, "myapp"},
		{"header mismatch", "/v1/x", nil, codes.Unauthenticated, "other"},
		{"header and query disagree", "/v1/x?project=myapp", nil, codes.Unauthenticated, "other"},
		{"header invalid", "/v1/x", nil, codes.InvalidArgument, "Not A Project"},
		{"header repeated (merged)", "/v1/x", nil, codes.InvalidArgument, "myapp,myapp"},
		{"query match", "/v1/x?project=myapp", nil, codes.OK, ""},
		{"query mismatch", "/v1/x?project=other", nil, codes.Unauthenticated, ""},
		{"extension match", "/v1/x", map[string]string{"project": "myapp"}, codes.OK, ""},
		{"extension mismatch", "/v1/x", map[string]string{"project": "other"}, codes.Unauthenticated, ""},
		{"extension and query disagree", "/v1/x?project=myapp", map[string]string{"project": "other"}, codes.Unauthenticated, ""},
		{"query twice", "/v1/x?project=myapp&project=myapp", nil, codes.InvalidArgument, ""},
		{"query empty", "/v1/x?project=", nil, codes.InvalidArgument, ""},
		{"extension empty", "/v1/x", map[string]string{"project": ""}, codes.InvalidArgument, ""},
		{"other parameters only", "/v1/x?projects=1&a=%zz", nil, codes.OK, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := map[string]string{"authorization": auth["authorization"]}
			if tc.header != "" {
				h["x-jwtgate-project"] = tc.header
			}
			req := checkReq(tc.path, h)
			req.Attributes.ContextExtensions = tc.ext
			resp := check(t, c, req)
			if got := codes.Code(resp.GetStatus().GetCode()); got != tc.want {
				t.Fatalf("status %v, want %v (%v)", got, tc.want, resp)
			}
			switch tc.want {
			case codes.Unauthenticated:
				mustDenied(t, resp, "audience_mismatch", bad)
			case codes.InvalidArgument:
				if d := resp.GetDeniedResponse(); d.GetStatus().GetCode() != 400 || !strings.Contains(d.GetBody(), `"invalid_request"`) {
					t.Fatalf("denied %v", d)
				}
			}
		})
	}
}

// With encode_raw_headers, Envoy sends every header separately: a repeated
// Authorization header is refused as on the verify listener.
func TestGRPCCheckRawHeaders(t *testing.T) {
	ts := startServer(t, Config{GRPCAddr: "127.0.0.1:0"})
	c := authv3.NewAuthorizationClient(grpcConn(t, ts.srv.GRPCAddr()))
	a := enginetest.Key("rsa2048-a")
	ts.addKey("myapp", a, "k1", "")
	tok := token(a, "k1", "myapp", now(), 300, nil)
	raw := func(vals ...string) *authv3.CheckRequest {
		req := checkReq("/", nil)
		hm := &corev3.HeaderMap{}
		hm.Headers = append(hm.Headers, &corev3.HeaderValue{Key: ":path", RawValue: []byte("/")})
		for _, v := range vals {
			hm.Headers = append(hm.Headers, &corev3.HeaderValue{Key: "authorization", RawValue: []byte(v)})
		}
		req.Attributes.Request.Http.HeaderMap = hm
		return req
	}
	if resp := check(t, c, raw("Bearer "+tok)); codes.Code(resp.GetStatus().GetCode()) != codes.OK {
		t.Fatalf("one raw header: %v", resp.GetStatus())
	}
	two := do(t, "GET", ts.base+"/v1/verify", nil, "Authorization", "Bearer "+tok, "Authorization", "Bearer "+tok)
	mustDenied(t, check(t, c, raw("Bearer "+tok, "Bearer "+tok)), "malformed", two)
	none := do(t, "GET", ts.base+"/v1/verify", nil)
	mustDenied(t, check(t, c, raw()), "missing_token", none)
}

// A store outage is UNAVAILABLE on the RPC itself (Envoy's
// failure_mode_allow / status_on_error decide), never a verdict.
func TestGRPCCheckStoreUnavailable(t *testing.T) {
	ts := startServer(t, Config{GRPCAddr: "127.0.0.1:0", Store: failingStore{engine.NewMemoryStore()}})
	c := authv3.NewAuthorizationClient(grpcConn(t, ts.srv.GRPCAddr()))
	tok := token(enginetest.Key("rsa2048-a"), "k1", "myapp", now(), 300, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	resp, err := c.Check(ctx, checkReq("/", map[string]string{"authorization": "Bearer " + tok}))
	if status.Code(err) != codes.Unavailable || resp != nil {
		t.Fatalf("Check = %v, %v; want no response and Unavailable", resp, err)
	}
	if r := ts.verify(tok); r.Status != 503 {
		t.Fatalf("verify listener: %d, want 503 as well", r.Status)
	}
}

func TestGRPCHealth(t *testing.T) {
	ts := startServer(t, Config{GRPCAddr: "127.0.0.1:0"})
	hc := healthpb.NewHealthClient(grpcConn(t, ts.srv.GRPCAddr()))
	get := func(svc string) (healthpb.HealthCheckResponse_ServingStatus, error) {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		r, err := hc.Check(ctx, &healthpb.HealthCheckRequest{Service: svc})
		return r.GetStatus(), err
	}
	for _, svc := range []string{"", GRPCHealthService} {
		if st, err := get(svc); err != nil || st != healthpb.HealthCheckResponse_SERVING {
			t.Fatalf("health(%q) = %v, %v; want SERVING", svc, st, err)
		}
	}
	if _, err := get("no.such.Service"); status.Code(err) != codes.NotFound {
		t.Fatalf("unknown service: %v", err)
	}
	// Draining: NOT_SERVING (as /readyz turns 503) while requests still run.
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	watch, err := hc.Watch(ctx, &healthpb.HealthCheckRequest{Service: GRPCHealthService})
	if err != nil {
		t.Fatal(err)
	}
	if r, err := watch.Recv(); err != nil || r.GetStatus() != healthpb.HealthCheckResponse_SERVING {
		t.Fatalf("watch: %v %v", r, err)
	}
	ts.srv.cfg.ShutdownDelay = time.Second
	go ts.srv.Shutdown(context.Background())
	r, err := watch.Recv()
	if err != nil || r.GetStatus() != healthpb.HealthCheckResponse_NOT_SERVING {
		t.Fatalf("watch during drain: %v %v", r, err)
	}
	if hr := do(t, "GET", ts.base+"/readyz", nil); hr.Status != 503 {
		t.Fatalf("readyz during drain: %d", hr.Status)
	}
}

func TestGRPCListenerOffByDefault(t *testing.T) {
	ts := startServer(t, Config{})
	if ts.srv.GRPCAddr() != "" {
		t.Fatalf("gRPC listener on %q without GRPCAddr", ts.srv.GRPCAddr())
	}
}

// The gRPC listener serves at most Concurrency connections at once.
func TestGRPCConnectionLimit(t *testing.T) {
	ts := startServer(t, Config{GRPCAddr: "127.0.0.1:0", Concurrency: 1})
	first := authv3.NewAuthorizationClient(grpcConn(t, ts.srv.GRPCAddr()))
	if r := check(t, first, checkReq("/", nil)); codes.Code(r.GetStatus().GetCode()) != codes.Unauthenticated {
		t.Fatalf("first connection: %v", r.GetStatus())
	}
	secondConn := grpcConn(t, ts.srv.GRPCAddr())
	second := authv3.NewAuthorizationClient(secondConn)
	ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
	defer cancel()
	if _, err := second.Check(ctx, checkReq("/", nil)); status.Code(err) != codes.DeadlineExceeded {
		t.Fatalf("second connection served while the first is open: %v", err)
	}
}

// TestGRPCAllowedCacheEncodingsBounded: OK responses built for the same
// token by calls racing each other leave no pre-encoding behind that the
// bounded cache no longer holds (the codec's map must shrink with the
// cache's evictions, or each race leaks one encoding for good).
func TestGRPCAllowedCacheEncodingsBounded(t *testing.T) {
	ts := startServer(t, Config{})
	a := enginetest.Key("rsa2048-a")
	ts.addKey("myapp", a, "k1", "")
	ea := newExtAuthz(ts.srv)
	static := 0
	ea.codec.pre.Range(func(_, _ any) bool { static++; return true })
	n := now()
	const rounds, callers = 200, 8
	for i := range rounds {
		tok := []byte(token(a, "k1", "myapp", n, 300, map[string]any{"sub": fmt.Sprintf("user-%d", i)}))
		var start, done sync.WaitGroup
		start.Add(1)
		for range callers {
			done.Add(1)
			go func() {
				defer done.Done()
				c := engine.AcquireClaims()
				defer engine.ReleaseClaims(c)
				if err := ts.srv.v.VerifyForProject(tok, []byte("myapp"), c); err != nil {
					t.Errorf("verify: %v", err)
					return
				}
				start.Wait()
				ea.allowedCached(c)
			}()
		}
		start.Done()
		done.Wait()
	}
	got := 0
	ea.codec.pre.Range(func(_, _ any) bool { got++; return true })
	if want := static + ea.allowedCache.Len(); got != want {
		t.Fatalf("%d pre-encoded responses, want %d (%d static + %d cached)", got, want, static, ea.allowedCache.Len())
	}
}

// TestGRPCDenialsPreEncoded: every shared denial, those naming the claim
// at fault included, is sent from its encoding made once, not marshaled
// again on each Check.
func TestGRPCDenialsPreEncoded(t *testing.T) {
	ts := startServer(t, Config{})
	ea := newExtAuthz(ts.srv)
	if len(ea.deniedBy) == 0 {
		t.Fatal("no detailed denials (missing exp, missing iat)")
	}
	for e, r := range ea.deniedBy {
		if _, ok := ea.codec.pre.Load(r); !ok {
			t.Errorf("the denial for %v is not pre-encoded", e)
		}
	}
}
