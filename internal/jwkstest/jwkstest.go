// Package jwkstest tests the import of keys from a JWKS URL over a REAL
// jwtgate server (both listeners on loopback) and a local TLS JWKS server
// that rotates keys, fails, serves garbage and huge bodies, and redirects.
// Each durable store runs it from its own tests:
//
//	func TestJWKSImport(t *testing.T) {
//		jwkstest.Run(t, func(t *testing.T) engine.KeyStore { return openMyStore(t) })
//	}
package jwkstest

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"log/slog"
	"math/big"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jwtgate/jwtgate/engine"
	"github.com/jwtgate/jwtgate/engine/enginetest"
	"github.com/jwtgate/jwtgate/internal/apitest"
	"github.com/jwtgate/jwtgate/internal/lifecycletest"
	"github.com/jwtgate/jwtgate/server"
	"github.com/jwtgate/jwtgate/server/servertest"
)

// Modes of the JWKS server.
const (
	ModeKeys     = "keys"     // the current JWK Set (ETag, 304 on If-None-Match)
	ModeFail     = "fail"     // 500
	ModeSlow     = "slow"     // answers after 6 s (beyond the 5 s limit)
	ModeGarbage  = "garbage"  // not JSON
	ModeHuge     = "huge"     // a valid JWK Set larger than 64 KiB
	ModeRedirect = "redirect" // 302 to another host (localhost instead of 127.0.0.1)
)

// JWKS is a local TLS JWKS server.
type JWKS struct {
	TS          *httptest.Server
	mu          sync.Mutex
	keys        []map[string]any
	mode        string
	maxAge      int // Cache-Control max-age when > 0
	version     int
	delay       time.Duration
	Requests    atomic.Int64 // every request
	inFlight    atomic.Int64
	MaxInFlight atomic.Int64 // the most requests in progress at once
	NotMod      atomic.Int64 // answered 304
}

// NewJWKS starts a JWKS server serving keys.
func NewJWKS(t testing.TB, keys ...map[string]any) *JWKS {
	j := &JWKS{keys: keys, mode: ModeKeys, version: 1}
	j.TS = httptest.NewTLSServer(http.HandlerFunc(j.serve))
	t.Cleanup(j.TS.Close)
	return j
}

// URL is the JWKS URL.
func (j *JWKS) URL() string { return j.TS.URL + "/jwks.json" }

// Set replaces the keys (a new ETag).
func (j *JWKS) Set(keys ...map[string]any) {
	j.mu.Lock()
	defer j.mu.Unlock()
	j.keys, j.version = keys, j.version+1
}

// Mode switches how the server answers.
func (j *JWKS) Mode(m string) { j.mu.Lock(); j.mode = m; j.mu.Unlock() }

// MaxAge sets the Cache-Control max-age of answers (0: none).
func (j *JWKS) MaxAge(s int) { j.mu.Lock(); j.maxAge = s; j.mu.Unlock() }

// Delay makes every answer wait d.
func (j *JWKS) Delay(d time.Duration) { j.mu.Lock(); j.delay = d; j.mu.Unlock() }

func (j *JWKS) serve(w http.ResponseWriter, r *http.Request) {
	j.Requests.Add(1)
	in := j.inFlight.Add(1)
	defer j.inFlight.Add(-1)
	for {
		m := j.MaxInFlight.Load()
		if in <= m || j.MaxInFlight.CompareAndSwap(m, in) {
			break
		}
	}
	j.mu.Lock()
	mode, keys, version, maxAge, delay := j.mode, j.keys, j.version, j.maxAge, j.delay
	j.mu.Unlock()
	if delay > 0 {
		time.Sleep(delay)
	}
	switch mode {
	case ModeFail:
		http.Error(w, "boom", http.StatusInternalServerError)
		return
	case ModeSlow:
		select {
		case <-time.After(6 * time.Second):
		case <-r.Context().Done():
		}
		return
	case ModeGarbage:
		w.Write([]byte("<html>not a jwks</html>"))
		return
	case ModeHuge:
		pad := strings.Repeat("x", 70<<10)
		w.Write([]byte(`{"keys":[],"pad":"` + pad + `"}`))
		return
	case ModeRedirect:
		u := strings.Replace(j.TS.URL, "127.0.0.1", "localhost", 1)
		http.Redirect(w, r, u+"/jwks.json", http.StatusFound)
		return
	}
	etag := fmt.Sprintf(`"v%d"`, version)
	w.Header().Set("ETag", etag)
	if maxAge > 0 {
		w.Header().Set("Cache-Control", fmt.Sprintf("public, max-age=%d", maxAge))
	}
	if r.Header.Get("If-None-Match") == etag {
		j.NotMod.Add(1)
		w.WriteHeader(http.StatusNotModified)
		return
	}
	w.Header().Set("Content-Type", "application/jwk-set+json")
	json.NewEncoder(w).Encode(map[string]any{"keys": keys})
}

// RSAJWK is the public JWK of priv with kid.
func RSAJWK(priv *rsa.PrivateKey, kid string) map[string]any {
	return map[string]any{"kty": "RSA", "kid": kid, "use": "sig", "alg": "RS256",
		"n": enginetest.B64(priv.N.Bytes()), "e": enginetest.B64(big.NewInt(int64(priv.E)).Bytes())}
}

// ECJWK is an EC P-256 public JWK with kid (refused: only RSA is imported).
func ECJWK(t testing.TB, kid string) map[string]any {
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return map[string]any{"kty": "EC", "kid": kid, "crv": "P-256",
		"x": enginetest.B64(k.X.FillBytes(make([]byte, 32))), "y": enginetest.B64(k.Y.FillBytes(make([]byte, 32)))}
}

// Node is a real server with the importer's test settings.
type Node = lifecycletest.Node

// Start starts a server on st whose importer trusts j's certificate,
// looks at its sources every 50 ms and lets an unknown kid refresh a
// source once per second; allowPrivate as --jwks-allow-private.
func Start(t *testing.T, st engine.KeyStore, j *JWKS, allowPrivate bool) *Node {
	t.Helper()
	pool := x509.NewCertPool()
	pool.AddCert(j.TS.Certificate())
	logs := &lifecycletest.LogBuffer{}
	srv := servertest.Start(t, server.Config{
		Store: st, AdminToken: lifecycletest.RootToken, UsageFlushInterval: lifecycletest.FlushInterval,
		Logger:        slog.New(slog.NewTextHandler(logs, nil)),
		EngineOptions: []engine.Option{engine.WithMaxTTL(lifecycletest.MaxTTL), engine.WithLeeway(0)},
		JWKS: server.JWKSImportConfig{AllowPrivate: allowPrivate, RootCAs: pool,
			Interval: 50 * time.Millisecond, UnknownKIDInterval: UnknownKIDInterval},
	})
	return &Node{T: t, Srv: srv, Store: st, Base: "http://" + srv.Addr(), Admin: "http://" + srv.AdminAddr(), Logs: logs}
}

// UnknownKIDInterval is the test servers' bound on unknown-kid refreshes.
const UnknownKIDInterval = 2 * time.Second

func sourcePath(project string) string { return "/v1/projects/" + project + "/jwks-source" }

// PutSource gives project the JWKS URL (refresh, grace as durations).
func PutSource(n *Node, project, url, refresh, grace string) apitest.Response {
	n.T.Helper()
	return n.Root("PUT", sourcePath(project), map[string]any{"url": url, "refresh": refresh, "grace": grace})
}

// Source returns GET .../jwks-source.
func Source(n *Node, project string) map[string]any {
	n.T.Helper()
	return lifecycletest.Want(n.T, "GET jwks-source", n.Root("GET", sourcePath(project), nil), 200, "")
}

// Eventually polls cond every 20 ms for up to d.
func Eventually(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("after %v: %s", d, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// verify sends a fresh token of kid for project and returns the status.
func verify(n *Node, priv *rsa.PrivateKey, kid, project string) int {
	n.T.Helper()
	tok := enginetest.SignRS256(priv, enginetest.Header(kid), enginetest.Claims(project, time.Now().Unix(), 1))
	return apitest.Do(n.T, "GET", n.Base+"/v1/verify?project="+project, nil, "Authorization", "Bearer "+tok).Status
}

func kids(m map[string]any) []string {
	var out []string
	for _, k := range m["imported_kids"].([]any) {
		out = append(out, k.(string))
	}
	return out
}
