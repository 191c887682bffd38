package server

import (
	"bytes"
	"context"
	"crypto/rsa"
	"encoding/json"
	"log/slog"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/jwtgate/jwtgate/engine"
	"github.com/jwtgate/jwtgate/engine/enginetest"
	"github.com/jwtgate/jwtgate/internal/apitest"
)

const testAdminToken = "test-admin-token-0123456789"

// testServer is a real server on 127.0.0.1:0 listeners.
type testServer struct {
	t     *testing.T
	srv   *Server
	store engine.KeyStore
	base  string // verify listener URL
	admin string // admin listener URL
	logs  *syncBuffer
}

type syncBuffer struct {
	mu chanMutex
	b  *bytes.Buffer
}

type chanMutex chan struct{}

func (m chanMutex) Lock()   { m <- struct{}{} }
func (m chanMutex) Unlock() { <-m }

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func startServer(t *testing.T, cfg Config) *testServer {
	t.Helper()
	if cfg.Store == nil {
		cfg.Store = engine.NewMemoryStore()
	}
	if cfg.Addr == "" {
		cfg.Addr = "127.0.0.1:0"
	}
	if cfg.AdminAddr == "" {
		cfg.AdminAddr = "127.0.0.1:0"
	}
	if cfg.AdminToken == "" && cfg.AdminTokenFile == "" && cfg.DataDir == "" {
		cfg.AdminToken = testAdminToken
	}
	logs := &syncBuffer{mu: make(chanMutex, 1), b: &bytes.Buffer{}}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	if cfg.UsageFlushInterval == 0 {
		cfg.UsageFlushInterval = 50 * time.Millisecond
	}
	srv, err := New(cfg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	if err := srv.Start(); err != nil {
		t.Fatalf("Start: %v", err)
	}
	ts := &testServer{t: t, srv: srv, store: cfg.Store, base: "http://" + srv.Addr(), admin: "http://" + srv.AdminAddr(), logs: logs}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		srv.Shutdown(ctx)
	})
	return ts
}

type response = apitest.Response

func do(t testing.TB, method, url string, body []byte, headers ...string) response {
	t.Helper()
	return apitest.Do(t, method, url, body, headers...)
}

// adminDo sends an admin request with the admin token.
func (ts *testServer) adminDo(method, path string, body any) response {
	ts.t.Helper()
	return apitest.AdminDo(ts.t, ts.admin, ts.srv.AdminToken(), method, path, body)
}

// addKey registers priv's public key in project and returns the key object.
func (ts *testServer) addKey(project string, priv *rsa.PrivateKey, kid, label string) map[string]any {
	ts.t.Helper()
	body := map[string]any{"public_key": string(enginetest.PublicPEM(&priv.PublicKey)), "label": label}
	if kid != "" {
		body["kid"] = kid
	}
	r := ts.adminDo("POST", "/v1/projects/"+project+"/keys", body)
	if r.Status != 201 {
		ts.t.Fatalf("add key: %d %s", r.Status, r.Body)
	}
	return r.JSON(ts.t)
}

// verify calls /v1/verify with the token as a bearer token.
func (ts *testServer) verify(token string) response {
	ts.t.Helper()
	return do(ts.t, "GET", ts.base+"/v1/verify", nil, "Authorization", "Bearer "+token)
}

func mustCode(t *testing.T, r response, code string) {
	t.Helper()
	if r.Status != 401 {
		t.Fatalf("status %d, want 401 (%s); body %s", r.Status, code, r.Body)
	}
	m := r.JSON(t)
	if m["error"] != code || m["valid"] != false {
		t.Fatalf("error %v, want %s; body %s", m["error"], code, r.Body)
	}
	want := `Bearer error="invalid_token", error_description="` + code + `"`
	if code == "missing_token" {
		want = `Bearer realm="jwtgate"`
	}
	if got := r.Header.Get("WWW-Authenticate"); got != want {
		t.Fatalf("WWW-Authenticate %q, want %q", got, want)
	}
	if msg, _ := m["message"].(string); msg == "" {
		t.Fatalf("no message in %s", r.Body)
	}
}

func mustOK(t *testing.T, r response) map[string]any {
	t.Helper()
	if r.Status != 200 {
		t.Fatalf("status %d, want 200; body %s", r.Status, r.Body)
	}
	m := r.JSON(t)
	if m["valid"] != true {
		t.Fatalf("valid is not true: %s", r.Body)
	}
	return m
}

// token mints an RS256 token for project under kid with extra claims.
func token(priv *rsa.PrivateKey, kid, project string, iat, ttl int64, extra map[string]any) string {
	return enginetest.Token(priv, kid, project, iat, ttl, extra)
}

func now() int64 { return time.Now().Unix() }

func contains(s, sub string) bool { return strings.Contains(s, sub) }

func readFile(path string) ([]byte, error) { return os.ReadFile(path) }

func jsonUnmarshal(b []byte, v any) error { return json.Unmarshal(b, v) }

// waitDraining waits until Shutdown has begun (the listeners stay open for
// the ShutdownDelay that follows), rather than sleeping a guessed time.
func waitDraining(t *testing.T, s *Server) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !s.draining.Load() {
		if time.Now().After(deadline) {
			t.Fatal("Shutdown did not begin")
		}
		time.Sleep(time.Millisecond)
	}
}
