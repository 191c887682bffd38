package main

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jwtgate/jwtgate/engine"
	"github.com/jwtgate/jwtgate/engine/enginetest"
	"github.com/jwtgate/jwtgate/server"
)

// rssOf reads the resident set size of process pid.
func rssOf(t *testing.T, pid int) int64 {
	t.Helper()
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		t.Fatalf("reading RSS: %v", err)
	}
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, "VmRSS:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			if err != nil {
				t.Fatal(err)
			}
			return kb << 10
		}
	}
	t.Fatal("no VmRSS in /proc/<pid>/status")
	return 0
}

// Issue 9 item 7: 2,000 connections announcing Content-Length: 65536 on
// POST /v1/verify (sending 1 KiB of it, then nothing) held ~78 KB each in
// the server before its handler ran (RSS 11 -> 167 MB). The verify body
// is capped at 4 KiB: each gets 413 as soon as its headers are read, and
// the real server's RSS stays bounded while all 2,000 are open.
func TestVerifyBodyRSSBounded(t *testing.T) {
	const conns = 2000
	c := startChild(t, t.TempDir(), nil)
	pid := c.cmd.Process.Pid
	head := []byte("POST /v1/verify HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer x.y.z\r\nContent-Length: 65536\r\n\r\n" + strings.Repeat("b", 1024))
	before := rssOf(t, pid)
	cs := make([]net.Conn, 0, conns)
	defer func() {
		for _, c := range cs {
			c.Close()
		}
	}()
	peak := before
	for i := range conns {
		conn, err := net.DialTimeout("tcp", c.verify, 5*time.Second)
		if err != nil {
			t.Fatalf("dial (after %d connections): %v", len(cs), err)
		}
		cs = append(cs, conn)
		if _, err := conn.Write(head); err != nil {
			t.Fatalf("write: %v", err)
		}
		if i%250 == 0 {
			peak = max(peak, rssOf(t, pid))
		}
	}
	buf := make([]byte, 512)
	for i, conn := range cs {
		conn.SetReadDeadline(time.Now().Add(10 * time.Second))
		n, err := conn.Read(buf)
		if n == 0 || !bytes.HasPrefix(buf[:n], []byte("HTTP/1.1 413 ")) {
			t.Fatalf("connection %d: %q %v, want a 413", i, buf[:n], err)
		}
	}
	peak = max(peak, rssOf(t, pid))
	grown := peak - before
	t.Logf("server RSS %.1f MB -> peak %.1f MB over %d connections (%.1f KB each)", float64(before)/(1<<20), float64(peak)/(1<<20), conns, float64(grown)/conns/1024)
	// At most 20 KB a connection on average (it was ~78 KB).
	if limit := int64(conns * 20 << 10); grown > limit {
		t.Errorf("server RSS grew by %d bytes over %d connections; want at most %d", grown, conns, limit)
	}
}

// Issue 9 item 15: jwtgate serve refuses an admin token file that group
// or others can read, and says which chmod to run.
func TestServeRefusesTokenFileReadableByOthers(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "admin-token-file")
	if err := os.WriteFile(path, []byte("a-long-enough-admin-token\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	os.Chmod(path, 0o640)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, binary(t), "serve", "--data-dir", filepath.Join(dir, "data"), "--admin-token-file", path,
		"--addr", "127.0.0.1:0", "--admin-addr", "127.0.0.1:0")
	out, err := cmd.CombinedOutput()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != exitError || ctx.Err() != nil {
		t.Fatalf("serve with a group-readable token file: %v (want exit %d)\n%s", err, exitError, out)
	}
	if !strings.Contains(string(out), "chmod 600 "+path) {
		t.Errorf("the message does not say to run chmod 600 %s:\n%s", path, out)
	}
}

// Issue 9 item 15: creating the embedded database (and its data
// directory) fsyncs the directories that hold their names.
func TestNewDatabaseSyncsDataDir(t *testing.T) {
	var synced []string
	old := syncDir
	syncDir = func(p string) error { synced = append(synced, p); return old(p) }
	defer func() { syncDir = old }()
	parent := t.TempDir()
	dir := filepath.Join(parent, "data")
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	_, closer, err := openStore(context.Background(), "", dir, storeOptions{}, log)
	if err != nil {
		t.Fatal(err)
	}
	closer.Close()
	if len(synced) != 2 || synced[0] != parent || synced[1] != dir {
		t.Errorf("synced %q, want [%s %s]", synced, parent, dir)
	}
	synced = nil
	_, closer, err = openStore(context.Background(), "", dir, storeOptions{}, log)
	if err != nil {
		t.Fatal(err)
	}
	closer.Close()
	if len(synced) != 0 {
		t.Errorf("reopening synced %q", synced)
	}
}

// Issue 9 item 2: a key stored as "." or ".." by an older version can be
// read, deactivated and deleted with jwtgate keys (through the
// /v1/projects/{project}/key?kid= form; no path segment can carry it).
func TestKeysCLILegacyDotKID(t *testing.T) {
	store := engine.NewMemoryStore()
	pub := &enginetest.Key("rsa2048-a").PublicKey
	for _, kid := range []string{".", ".."} {
		k := &engine.Key{KID: kid, Project: "acme", Public: pub, Status: engine.StatusActive, CreatedAt: time.Now(), UpdatedAt: time.Now()}
		if err := store.Create(context.Background(), k); err != nil {
			t.Fatal(err)
		}
	}
	srv, err := server.New(server.Config{Addr: "127.0.0.1:0", AdminAddr: "127.0.0.1:0", Store: store, AdminToken: testToken,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Shutdown(context.Background()) })
	common := []string{"--admin-url", "http://" + srv.AdminAddr(), "--admin-token", testToken, "--project", "acme"}
	for _, kid := range []string{".", ".."} {
		if code, out, errs := runCLI(t, append([]string{"keys", "get", "--kid", kid}, common...)...); code != 0 || !strings.Contains(out, `"kid": "`+kid+`"`) && !strings.Contains(out, `"kid":"`+kid+`"`) {
			t.Errorf("keys get --kid %s: %d %s %s", kid, code, out, errs)
		}
		if code, out, errs := runCLI(t, append([]string{"keys", "update", "--kid", kid, "--status", "inactive"}, common...)...); code != 0 {
			t.Errorf("keys update --kid %s: %d %s %s", kid, code, out, errs)
		}
		if code, out, errs := runCLI(t, append([]string{"keys", "delete", "--kid", kid}, common...)...); code != 0 {
			t.Errorf("keys delete --kid %s: %d %s %s", kid, code, out, errs)
		}
		if _, err := store.Get(context.Background(), kid); err == nil {
			t.Errorf("kid %q still stored after keys delete", kid)
		}
	}
}
