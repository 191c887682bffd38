// Package proxytest runs real reverse proxies (nginx, Caddy) in front of a
// real jwtgate, with the configurations docs/examples/ shows, and an API
// upstream that reports what it received. Only the example's addresses are
// rewritten (to free loopback ports); everything else is the file as
// published.
package proxytest

import (
	"encoding/json"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// The addresses the examples use, which the tests replace.
const (
	ExampleJWTGate = "127.0.0.1:8080"
	ExampleAPI     = "127.0.0.1:9000"
	ExamplePort    = "8000"
)

// Example returns the contents of docs/examples/<name>.
func Example(t *testing.T, name string) string {
	t.Helper()
	_, file, _, _ := runtime.Caller(0)
	b, err := os.ReadFile(filepath.Join(filepath.Dir(file), "..", "..", "docs", "examples", name))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// Rewrite replaces each old address in cfg by its new one, failing the test
// when an old one does not occur (the example changed under the test).
func Rewrite(t *testing.T, cfg string, pairs ...string) string {
	t.Helper()
	for i := 0; i+1 < len(pairs); i += 2 {
		if !strings.Contains(cfg, pairs[i]) {
			t.Fatalf("the example no longer contains %q", pairs[i])
		}
		cfg = strings.ReplaceAll(cfg, pairs[i], pairs[i+1])
	}
	return cfg
}

// FreePort returns a loopback port nothing listens on right now.
func FreePort(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	_, port, _ := net.SplitHostPort(ln.Addr().String())
	return port
}

// Binary finds a proxy's binary: $<env> when set, else name on PATH or in
// /usr/sbin. When there is none the test is skipped with advice, unless
// $<require> is "1" (CI), which makes it a failure.
func Binary(t *testing.T, name, env, require, advice string) string {
	t.Helper()
	if p := os.Getenv(env); p != "" {
		return p
	}
	if p, err := exec.LookPath(name); err == nil {
		return p
	}
	if p := "/usr/sbin/" + name; fileExists(p) {
		return p
	}
	if os.Getenv(require) == "1" {
		t.Fatalf("%s=1 but no %s binary was found (set %s or put it on PATH): %s", require, name, env, advice)
	}
	t.Skipf("%s tests SKIPPED: no %s binary (set %s or put it on PATH). %s Set %s=1 to make this a failure.", name, name, env, advice, require)
	return ""
}

func fileExists(p string) bool {
	fi, err := os.Stat(p)
	return err == nil && !fi.IsDir()
}

// Start runs a proxy process until the test ends, and waits until addr
// accepts connections.
func Start(t *testing.T, addr string, name string, args ...string) {
	t.Helper()
	cmd := exec.Command(name, args...)
	var out strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { cmd.Wait(); close(done) }()
	t.Cleanup(func() {
		cmd.Process.Signal(os.Interrupt)
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			cmd.Process.Kill()
			<-done
		}
	})
	deadline := time.Now().Add(20 * time.Second)
	for {
		if c, err := net.DialTimeout("tcp", addr, time.Second); err == nil {
			c.Close()
			return
		}
		select {
		case <-done:
			t.Fatalf("%s exited: %s", filepath.Base(name), out.String())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s does not listen on %s: %s", filepath.Base(name), addr, out.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// Seen is what the API upstream received on one request.
type Seen struct {
	Method  string            `json:"method"`
	Path    string            `json:"path"`
	Headers map[string]string `json:"headers"`
	Body    string            `json:"body"`
}

// API is an upstream that answers 200 with the request it received (as
// Seen JSON) and counts requests.
type API struct {
	URL   string
	Addr  string
	Calls atomic.Int64
}

// StartAPI starts the upstream on a loopback port.
func StartAPI(t *testing.T) *API {
	t.Helper()
	a := &API{}
	hs := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		a.Calls.Add(1)
		s := Seen{Method: r.Method, Path: r.URL.RequestURI(), Headers: map[string]string{}}
		for k := range r.Header {
			s.Headers[k] = strings.Join(r.Header.Values(k), "|")
		}
		b := make([]byte, 1024)
		n, _ := r.Body.Read(b)
		s.Body = string(b[:n])
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(s)
	}))
	t.Cleanup(hs.Close)
	a.URL, a.Addr = hs.URL, strings.TrimPrefix(hs.URL, "http://")
	return a
}
