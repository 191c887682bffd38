package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/jwtgate/jwtgate/engine/enginetest"
)

var (
	buildOnce sync.Once
	binPath   string
	buildErr  error
	buildDir  string
)

// binary builds the real jwtgate once per test run.
func binary(t *testing.T) string {
	t.Helper()
	buildOnce.Do(func() {
		buildDir, buildErr = os.MkdirTemp("", "jwtgate-bin-")
		if buildErr != nil {
			return
		}
		binPath = filepath.Join(buildDir, "jwtgate")
		out, err := exec.Command("go", "build", "-o", binPath, ".").CombinedOutput()
		if err != nil {
			buildErr = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return binPath
}

func TestMain(m *testing.M) {
	code := m.Run()
	if buildDir != "" {
		os.RemoveAll(buildDir)
	}
	os.Exit(code)
}

// child is a running `jwtgate serve` process.
type child struct {
	cmd         *exec.Cmd
	verify      string
	admin       string
	grpc        string
	tokenPath   string
	stderr      *bytes.Buffer
	stderrMu    *sync.Mutex
	done        chan error
	adminToken  string
	listenerErr error
}

type lockedWriter struct {
	mu *sync.Mutex
	w  io.Writer
}

func (l lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

func startChild(t *testing.T, dataDir string, env []string, args ...string) *child {
	t.Helper()
	cmd := exec.Command(binary(t), append([]string{"serve", "--data-dir", dataDir, "--addr", "127.0.0.1:0", "--admin-addr", "127.0.0.1:0", "--log-format", "json"}, args...)...)
	cmd.Env = append(os.Environ(), env...)
	pr, pw := io.Pipe()
	c := &child{cmd: cmd, stderr: &bytes.Buffer{}, stderrMu: &sync.Mutex{}, done: make(chan error, 1)}
	cmd.Stderr = pw
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { c.done <- cmd.Wait(); pw.Close() }()
	t.Cleanup(func() {
		if cmd.ProcessState == nil {
			cmd.Process.Kill()
			<-c.done
		}
	})
	ready := make(chan struct{})
	go func() {
		sc := bufio.NewScanner(pr)
		signalled := false
		for sc.Scan() {
			line := sc.Bytes()
			lockedWriter{c.stderrMu, c.stderr}.Write(append(line, '\n'))
			var m map[string]any
			if json.Unmarshal(line, &m) == nil && m["msg"] == "jwtgate listening" && !signalled {
				c.verify, _ = m["verify_addr"].(string)
				c.admin, _ = m["admin_addr"].(string)
				c.grpc, _ = m["grpc_addr"].(string)
				c.tokenPath, _ = m["admin_token_file"].(string)
				signalled = true
				close(ready)
			}
		}
	}()
	select {
	case <-ready:
	case err := <-c.done:
		t.Fatalf("jwtgate serve exited early: %v\n%s", err, c.logs())
	case <-time.After(20 * time.Second):
		t.Fatalf("jwtgate serve did not start:\n%s", c.logs())
	}
	return c
}

func (c *child) logs() string {
	c.stderrMu.Lock()
	defer c.stderrMu.Unlock()
	return c.stderr.String()
}

func (c *child) token(t *testing.T) string {
	if c.adminToken != "" {
		return c.adminToken
	}
	b, err := os.ReadFile(c.tokenPath)
	if err != nil {
		t.Fatalf("admin token file %q: %v", c.tokenPath, err)
	}
	return strings.TrimSpace(string(b))
}

func httpDo(method, url, token string, body []byte) (int, []byte, error) {
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, _ := http.NewRequest(method, url, rd)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := (&http.Client{Timeout: 10 * time.Second}).Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, b, err
}

// kill -9 while keys are being registered: every acknowledged key is there
// after a restart, and the store is readable.
func TestKill9LosesNoAcknowledgedKey(t *testing.T) {
	dir := t.TempDir()
	c := startChild(t, dir, nil)
	tok := c.token(t)
	if st, err := os.Stat(c.tokenPath); err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("admin token file mode: %v %v", st, err)
	}
	if strings.Contains(c.logs(), tok) {
		t.Fatal("the admin token was logged")
	}
	pubs := []string{"rsa2048-a", "rsa2048-b", "rsa2048-c", "rsa3072"}
	var mu sync.Mutex
	var acked []string
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for w := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			pem := string(enginetest.PublicPEM(&enginetest.Key(pubs[w]).PublicKey))
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				kid := fmt.Sprintf("w%d-k%d", w, i)
				body, _ := json.Marshal(map[string]any{"public_key": pem, "kid": kid, "label": "crash"})
				status, _, err := httpDo("POST", "http://"+c.admin+"/v1/projects/crash/keys", tok, body)
				if err != nil {
					return // the process died mid-request: not acknowledged
				}
				if status == 201 {
					mu.Lock()
					acked = append(acked, kid)
					mu.Unlock()
				}
			}
		}()
	}
	time.Sleep(700 * time.Millisecond)
	if err := c.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	<-c.done
	close(stop)
	wg.Wait()
	mu.Lock()
	n := len(acked)
	mu.Unlock()
	if n < 5 {
		t.Fatalf("only %d keys acknowledged before the kill", n)
	}

	c2 := startChild(t, dir, nil)
	if c2.token(t) != tok {
		t.Fatal("admin token changed across restart")
	}
	status, body, err := httpDo("GET", "http://"+c2.admin+"/v1/projects/crash/keys", tok, nil)
	if err != nil || status != 200 {
		t.Fatalf("list after restart: %d %v", status, err)
	}
	var list struct{ Keys []struct{ KID string } }
	if err := json.Unmarshal(body, &list); err != nil {
		t.Fatal(err)
	}
	have := map[string]bool{}
	for _, k := range list.Keys {
		have[k.KID] = true
	}
	for _, kid := range acked {
		if !have[kid] {
			t.Errorf("acknowledged key %s lost by kill -9", kid)
		}
	}
	t.Logf("%d keys acknowledged before SIGKILL, %d present after restart", n, len(list.Keys))
	// The restarted server verifies with a recovered key.
	kid := acked[0]
	w := int(kid[1] - '0')
	tokStr := enginetest.SignRS256(enginetest.Key(pubs[w]), enginetest.Header(kid), enginetest.Claims("crash", time.Now().Unix(), 300))
	if status, body, _ := httpDo("GET", "http://"+c2.verify+"/v1/verify", tokStr, nil); status != 200 {
		t.Fatalf("verify after restart: %d %s", status, body)
	}
}

// SIGTERM: /readyz turns 503, in-flight requests finish, usage is flushed,
// exit 0. Configuration from JWTGATE_* variables is honoured.
func TestSIGTERMDrainsAndExitsZero(t *testing.T) {
	dir := t.TempDir()
	adminTok := "env-admin-token-0123456789abcdef"
	c := startChild(t, dir, []string{"JWTGATE_ADMIN_TOKEN=" + adminTok, "JWTGATE_REQUIRE_CLAIMS=groupRef", "JWTGATE_SHUTDOWN_DELAY=500ms", "JWTGATE_USAGE_FLUSH_INTERVAL=1h"})
	c.adminToken = adminTok
	if c.tokenPath != "" {
		t.Fatalf("a token was generated although JWTGATE_ADMIN_TOKEN is set: %s", c.tokenPath)
	}
	a := enginetest.Key("rsa2048-a")
	body, _ := json.Marshal(map[string]any{"public_key": string(enginetest.PublicPEM(&a.PublicKey)), "kid": "k1"})
	if status, b, err := httpDo("POST", "http://"+c.admin+"/v1/projects/p/keys", adminTok, body); status != 201 {
		t.Fatalf("add: %d %s %v", status, b, err)
	}
	claims := enginetest.Claims("p", time.Now().Unix(), 300)
	if status, b, _ := httpDo("GET", "http://"+c.verify+"/v1/verify", enginetest.SignRS256(a, enginetest.Header("k1"), claims), nil); status != 401 || !strings.Contains(string(b), "missing_claim") {
		t.Fatalf("JWTGATE_REQUIRE_CLAIMS not applied: %d %s", status, b)
	}
	claims["groupRef"] = "g"
	good := enginetest.SignRS256(a, enginetest.Header("k1"), claims)
	for range 3 {
		if status, b, _ := httpDo("GET", "http://"+c.verify+"/v1/verify", good, nil); status != 200 {
			t.Fatalf("verify: %d %s", status, b)
		}
	}
	if err := c.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	time.Sleep(150 * time.Millisecond)
	if status, _, err := httpDo("GET", "http://"+c.verify+"/readyz", "", nil); err != nil || status != 503 {
		t.Fatalf("readyz while draining: %d %v", status, err)
	}
	select {
	case err := <-c.done:
		var ee *exec.ExitError
		if err != nil && errors.As(err, &ee) {
			t.Fatalf("exit code %d, want 0\n%s", ee.ExitCode(), c.logs())
		} else if err != nil {
			t.Fatal(err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("no exit after SIGTERM")
	}
	// The usage counted before the signal was flushed at shutdown (the
	// periodic flush was set to 1h).
	c2 := startChild(t, dir, []string{"JWTGATE_ADMIN_TOKEN=" + adminTok})
	status, b, _ := httpDo("GET", "http://"+c2.admin+"/v1/projects/p/keys/k1", adminTok, nil)
	var k map[string]any
	json.Unmarshal(b, &k)
	if status != 200 || k["verified_count"] != float64(3) || k["last_used_at"] == nil {
		t.Fatalf("usage after restart: %d %s", status, b)
	}
	if strings.Contains(c.logs(), adminTok) || strings.Contains(c.logs(), good) {
		t.Fatal("a secret reached the logs")
	}
}
