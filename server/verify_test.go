package server

import (
	"context"
	"encoding/json"
	"errors"
	"net"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jwtgate/jwtgate/engine"
	"github.com/jwtgate/jwtgate/engine/enginetest"
)

func TestVerifyEveryErrorCode(t *testing.T) {
	ts := startServer(t, Config{EngineOptions: []engine.Option{engine.WithRequiredClaims("groupRef")}})
	a, b := enginetest.Key("rsa2048-a"), enginetest.Key("rsa2048-b")
	ts.addKey("myapp", a, "ka", "")
	ts.addKey("myapp", b, "kb", "")
	if r := ts.adminDo("PATCH", "/v1/projects/myapp/keys/kb", map[string]any{"status": "inactive"}); r.Status != 200 {
		t.Fatalf("patch: %d %s", r.Status, r.Body)
	}
	n := now()
	g := map[string]any{"groupRef": "g1"}
	valid := token(a, "ka", "myapp", n, 300, g)
	mustOK(t, ts.verify(valid))

	hdr := func(m map[string]any) map[string]any { return m }
	cases := []struct {
		name, code string
		req        func() response
	}{
		{"no header", "missing_token", func() response { return do(t, "GET", ts.base+"/v1/verify", nil) }},
		{"bearer without token", "missing_token", func() response {
			return do(t, "GET", ts.base+"/v1/verify", nil, "Authorization", "Bearer")
		}},
		{"too large", "token_too_large", func() response { return ts.verify(strings.Repeat("a", 9000)) }},
		{"two parts", "malformed", func() response { return ts.verify("abc.def") }},
		{"basic scheme", "malformed", func() response {
			return do(t, "GET", ts.base+"/v1/verify", nil, "Authorization", "Basic "+valid)
		}},
		{"two spaces", "malformed", func() response {
			return do(t, "GET", ts.base+"/v1/verify", nil, "Authorization", "Bearer  "+valid)
		}},
		{"trailing data", "malformed", func() response {
			return do(t, "GET", ts.base+"/v1/verify", nil, "Authorization", "Bearer "+valid+" x")
		}},
		{"two authorization headers", "malformed", func() response {
			return do(t, "GET", ts.base+"/v1/verify", nil, "Authorization", "Bearer "+valid, "Authorization", "Bearer "+valid)
		}},
		{"hs256", "unsupported_algorithm", func() response {
			return ts.verify(enginetest.SignHS256([]byte("secret"), hdr(map[string]any{"alg": "HS256", "kid": "ka"}), enginetest.Claims("myapp", n, 300)))
		}},
		{"none", "unsupported_algorithm", func() response {
			return ts.verify(enginetest.Unsigned(map[string]any{"alg": "none", "kid": "ka"}, enginetest.Claims("myapp", n, 300)) + "c2ln")
		}},
		{"crit", "unsupported_header", func() response {
			return ts.verify(enginetest.SignRS256(a, map[string]any{"alg": "RS256", "kid": "ka", "crit": []string{"x"}, "x": 1}, enginetest.Claims("myapp", n, 300)))
		}},
		{"no kid", "missing_kid", func() response {
			return ts.verify(enginetest.SignRS256(a, map[string]any{"alg": "RS256"}, enginetest.Claims("myapp", n, 300)))
		}},
		{"unknown kid", "unknown_kid", func() response { return ts.verify(token(a, "nope", "myapp", n, 300, g)) }},
		{"inactive key", "key_inactive", func() response { return ts.verify(token(b, "kb", "myapp", n, 300, g)) }},
		{"no exp", "missing_claim", func() response {
			return ts.verify(token(a, "ka", "myapp", n, 300, map[string]any{"groupRef": "g", "exp": nil}))
		}},
		{"required claim absent", "missing_claim", func() response { return ts.verify(token(a, "ka", "myapp", n, 300, nil)) }},
		{"expired", "expired", func() response { return ts.verify(token(a, "ka", "myapp", n-400, 300, g)) }},
		{"nbf", "not_yet_valid", func() response {
			return ts.verify(token(a, "ka", "myapp", n, 300, map[string]any{"groupRef": "g", "nbf": n + 120}))
		}},
		{"iat future", "issued_in_future", func() response { return ts.verify(token(a, "ka", "myapp", n+120, 300, g)) }},
		{"ttl", "ttl_exceeded", func() response { return ts.verify(token(a, "ka", "myapp", n, 660, g)) }},
		{"aud", "audience_mismatch", func() response { return ts.verify(token(a, "ka", "other", n, 300, g)) }},
		{"project query", "audience_mismatch", func() response {
			return do(t, "GET", ts.base+"/v1/verify?project=other", nil, "Authorization", "Bearer "+valid)
		}},
		{"signature", "invalid_signature", func() response { return ts.verify(token(b, "ka", "myapp", n, 300, g)) }},
	}
	seen := map[string]bool{}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			mustCode(t, tc.req(), tc.code)
			seen[tc.code] = true
		})
	}
	for _, c := range engine.Codes() {
		if !seen[c.String()] {
			t.Errorf("code %s not covered over HTTP", c)
		}
	}
}

func TestVerifyOKResponse(t *testing.T) {
	ts := startServer(t, Config{ClaimHeaders: map[string]string{"groupRef": "X-Group-Ref", "consumerRef": "X-Consumer-Ref", "tier": "X-Tier"}})
	a := enginetest.Key("rsa2048-a")
	ts.addKey("myapp", a, "k1", "")
	n := now()
	tok := token(a, "k1", "myapp", n, 300, map[string]any{"groupRef": "g-1", "consumerRef": "c\u00e9", "tier": 3, "sub": "user\"1"})
	for _, method := range []string{"GET", "POST"} {
		r := do(t, method, ts.base+"/v1/verify?project=myapp", nil, "Authorization", "bearer "+tok)
		m := mustOK(t, r)
		if m["project"] != "myapp" || m["kid"] != "k1" || m["sub"] != "user\"1" || m["exp"] != float64(n+300) {
			t.Fatalf("body %s", r.Body)
		}
		claims, _ := m["claims"].(map[string]any)
		if claims["groupRef"] != "g-1" || claims["tier"] != float64(3) {
			t.Fatalf("claims %v", claims)
		}
		if r.Header.Get("Content-Type") != "application/json" {
			t.Fatalf("content-type %q", r.Header.Get("Content-Type"))
		}
		for h, want := range map[string]string{"X-Jwt-Project": "myapp", "X-Jwt-Kid": "k1", "X-Jwt-Subject": "user\"1", "X-Group-Ref": "g-1", "X-Consumer-Ref": "c\u00e9", "X-Tier": "3"} {
			if got := r.Header.Get(h); got != want {
				t.Errorf("%s: %q, want %q", h, got, want)
			}
		}
	}
	// HEAD: same status, no body.
	r := do(t, "HEAD", ts.base+"/v1/verify", nil, "Authorization", "Bearer "+tok)
	if r.Status != 200 || len(r.Body) != 0 || r.Header.Get("X-Jwt-Kid") != "k1" {
		t.Fatalf("HEAD: %d %q", r.Status, r.Body)
	}
	// A sub with a newline never reaches a header.
	tok2 := token(a, "k1", "myapp", n, 300, map[string]any{"sub": "a\r\nX-Evil: 1", "groupRef": "x\ny"})
	r = ts.verify(tok2)
	mustOK(t, r)
	if r.Header.Get("X-Evil") != "" || r.Header.Get("X-Jwt-Subject") != "" || r.Header.Get("X-Group-Ref") != "" {
		t.Fatalf("unsafe header values set: %v", r.Header)
	}
	// No sub: no header, no sub member.
	tok3 := token(a, "k1", "myapp", n, 300, map[string]any{"sub": nil})
	r = ts.verify(tok3)
	m := mustOK(t, r)
	if _, ok := m["sub"]; ok || r.Header.Get("X-Jwt-Subject") != "" {
		t.Fatalf("sub present without a sub claim: %s", r.Body)
	}
}

func TestVerifyListenerRoutes(t *testing.T) {
	ts := startServer(t, Config{})
	a := enginetest.Key("rsa2048-a")
	ts.addKey("myapp", a, "k1", "")
	ts.addKey("myapp", enginetest.Key("rsa3072"), "k2", "")
	ts.adminDo("PATCH", "/v1/projects/myapp/keys/k2", map[string]any{"status": "inactive"})

	r := do(t, "GET", ts.base+"/healthz", nil)
	if r.Status != 200 {
		t.Fatalf("healthz %d", r.Status)
	}
	r = do(t, "GET", ts.base+"/readyz", nil)
	if r.Status != 200 {
		t.Fatalf("readyz %d", r.Status)
	}
	r = do(t, "GET", ts.base+"/v1/projects/myapp/jwks.json", nil)
	if r.Status != 200 || r.Header.Get("Cache-Control") == "" {
		t.Fatalf("jwks %d %v", r.Status, r.Header)
	}
	var set struct {
		Keys []map[string]any `json:"keys"`
	}
	if err := json.Unmarshal(r.Body, &set); err != nil {
		t.Fatal(err)
	}
	if len(set.Keys) != 1 || set.Keys[0]["kid"] != "k1" || set.Keys[0]["alg"] != "RS256" || set.Keys[0]["use"] != "sig" || set.Keys[0]["kty"] != "RSA" || set.Keys[0]["e"] != "AQAB" {
		t.Fatalf("jwks: %s", r.Body)
	}
	want := engine.JWKOf(&a.PublicKey, "k1")
	if set.Keys[0]["n"] != want.N {
		t.Fatal("jwks n differs from the key's")
	}
	if r := do(t, "GET", ts.base+"/v1/projects/nobody/jwks.json", nil); r.Status != 404 {
		t.Fatalf("unknown project jwks: %d", r.Status)
	}
	for _, c := range []struct{ method, path, allow string }{
		{"POST", "/healthz", "GET, HEAD"},
		{"POST", "/readyz", "GET, HEAD"},
		{"POST", "/v1/projects/myapp/jwks.json", "GET, HEAD"},
	} {
		r := do(t, c.method, ts.base+c.path, nil)
		if r.Status != 405 || r.Header.Get("Allow") != c.allow {
			t.Errorf("%s %s: %d Allow=%q", c.method, c.path, r.Status, r.Header.Get("Allow"))
		}
	}
	if r := do(t, "GET", ts.base+"/nope", nil); r.Status != 404 {
		t.Fatalf("unknown route: %d", r.Status)
	}
}

// failingStore fails every read, as a store that is down does.
type failingStore struct{ engine.KeyStore }

var errDown = errors.New("store down")

func (failingStore) Get(context.Context, string) (*engine.Key, error) { return nil, errDown }

func TestVerifyStoreUnavailableIs503(t *testing.T) {
	ts := startServer(t, Config{Store: failingStore{engine.NewMemoryStore()}})
	tok := token(enginetest.Key("rsa2048-a"), "k1", "myapp", now(), 300, nil)
	r := ts.verify(tok)
	if r.Status != 503 {
		t.Fatalf("status %d, want 503: %s", r.Status, r.Body)
	}
	if m := r.JSON(t); m["error"] != "unavailable" {
		t.Fatalf("body %s", r.Body)
	}
	if r.Header.Get("WWW-Authenticate") != "" {
		t.Fatal("503 carries WWW-Authenticate")
	}
}

// An oversized header or a slow client is refused without hurting others.
func TestLimitsOversizedAndSlowRequests(t *testing.T) {
	ts := startServer(t, Config{ReadTimeout: 500 * time.Millisecond, IdleTimeout: time.Second})
	a := enginetest.Key("rsa2048-a")
	ts.addKey("myapp", a, "k1", "")
	tok := token(a, "k1", "myapp", now(), 300, nil)

	// Slow loris: headers trickle in and never end.
	slow, err := net.Dial("tcp", ts.srv.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer slow.Close()
	slow.Write([]byte("GET /v1/verify HTTP/1.1\r\nHost: x\r\n"))

	// Oversized header: 431 and the connection closed.
	big, err := net.Dial("tcp", ts.srv.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer big.Close()
	big.Write([]byte("GET /v1/verify HTTP/1.1\r\nHost: x\r\nX-Big: " + strings.Repeat("a", 100<<10) + "\r\n\r\n"))
	big.SetReadDeadline(time.Now().Add(5 * time.Second))
	buf := make([]byte, 4096)
	n, _ := big.Read(buf)
	if !strings.HasPrefix(string(buf[:n]), "HTTP/1.1 431") {
		t.Fatalf("oversized header answered %q", buf[:n])
	}

	// Oversized body on the admin listener: 413.
	r := ts.adminDo("POST", "/v1/projects/myapp/keys", strings.Repeat(" ", 65<<10)+"{}")
	if r.Status != 413 {
		t.Fatalf("big admin body: %d %s", r.Status, r.Body)
	}

	// Others are served meanwhile.
	for range 20 {
		mustOK(t, ts.verify(tok))
	}

	// The slow connection is cut after ReadTimeout.
	slow.SetReadDeadline(time.Now().Add(5 * time.Second))
	start := time.Now()
	n, err = slow.Read(buf)
	if err == nil && n > 0 && !strings.HasPrefix(string(buf[:n]), "HTTP/1.1 408") {
		t.Fatalf("slow client got %q", buf[:n])
	}
	if time.Since(start) > 4*time.Second {
		t.Fatal("slow client not cut off by the read timeout")
	}
	mustOK(t, ts.verify(tok))
}

func TestReadyzDrainsOnShutdown(t *testing.T) {
	ts := startServer(t, Config{ShutdownDelay: time.Second})
	if r := do(t, "GET", ts.base+"/readyz", nil); r.Status != 200 {
		t.Fatalf("readyz %d", r.Status)
	}
	done := make(chan error, 1)
	go func() { done <- ts.srv.Shutdown(context.Background()) }()
	waitDraining(t, ts.srv)
	r := do(t, "GET", ts.base+"/readyz", nil)
	if r.Status != 503 {
		t.Fatalf("readyz while draining: %d", r.Status)
	}
	if r := do(t, "GET", ts.base+"/healthz", nil); r.Status != 200 {
		t.Fatalf("healthz while draining: %d", r.Status)
	}
	if err := <-done; err != nil {
		t.Fatalf("shutdown: %v", err)
	}
	if _, err := net.DialTimeout("tcp", ts.srv.Addr(), time.Second); err == nil {
		t.Fatal("listener still open after Shutdown")
	}
}

// listFailingStore fails every listing, as a store that is down does.
type listFailingStore struct{ engine.KeyStore }

func (listFailingStore) List(context.Context, string) ([]*engine.Key, error) { return nil, errDown }

// TestJWKSStoreErrorLogBounded: while the store is down, each JWKS request
// (unauthenticated, any project name) fails; the log lines about it are
// bounded like those of failed admin authentications, the ones left out
// counted in the next line written.
func TestJWKSStoreErrorLogBounded(t *testing.T) {
	ts := startServer(t, Config{Store: listFailingStore{engine.NewMemoryStore()}})
	const n = 60
	for i := range n {
		if r := do(t, "GET", ts.base+"/v1/projects/p"+strconv.Itoa(i)+"/jwks.json", nil); r.Status != 503 {
			t.Fatalf("JWKS with the store down: %d, want 503", r.Status)
		}
	}
	lines := strings.Count(ts.logs.String(), "jwks: listing keys failed")
	if lines == 0 || lines > n/2 {
		t.Fatalf("%d log lines for %d failed JWKS requests, want between 1 and %d", lines, n, n/2)
	}
}
