package server

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/jwtgate/jwtgate/engine"
	"github.com/jwtgate/jwtgate/internal/tlstest"
)

// Issue 9 item 15: an admin token file readable by group or others is
// refused at start, with the exact chmod to run.
func TestAdminTokenFileReadableByOthersRefused(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "token")
	for _, mode := range []os.FileMode{0o644, 0o640, 0o604, 0o660, 0o666} {
		if err := os.WriteFile(path, []byte("a-long-enough-admin-token\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		os.Chmod(path, mode)
		_, err := New(Config{Store: engine.NewMemoryStore(), AdminTokenFile: path})
		if err == nil || !strings.Contains(err.Error(), "chmod 600 "+path) {
			t.Errorf("mode %o: err %v, want a refusal naming chmod 600 %s", mode, err, path)
		}
	}
	for _, mode := range []os.FileMode{0o600, 0o400} {
		os.Chmod(path, mode)
		if _, err := New(Config{Store: engine.NewMemoryStore(), AdminTokenFile: path}); err != nil {
			t.Errorf("mode %o: %v", mode, err)
		}
	}
}

// Issue 9 item 15: the same for a token generated into the data directory
// earlier and loosened since.
func TestGeneratedTokenFileReadableByOthersRefused(t *testing.T) {
	dir := t.TempDir()
	s, err := New(Config{Store: engine.NewMemoryStore(), DataDir: dir})
	if err != nil {
		t.Fatal(err)
	}
	path := s.AdminTokenPath()
	if fi, err := os.Stat(path); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("generated token file: %v %v", fi, err)
	}
	os.Chmod(path, 0o644)
	_, err = New(Config{Store: engine.NewMemoryStore(), DataDir: dir})
	if err == nil || !strings.Contains(err.Error(), "chmod 600 "+path) {
		t.Errorf("err %v, want a refusal naming chmod 600 %s", err, path)
	}
}

// Issue 9 item 15: creating the token file fsyncs the data directory, so
// that the file's directory entry survives a crash.
func TestDataDirSyncedAfterTokenFile(t *testing.T) {
	var synced []string
	old := syncDir
	syncDir = func(p string) error { synced = append(synced, p); return old(p) }
	defer func() { syncDir = old }()
	dir := filepath.Join(t.TempDir(), "data")
	if _, err := New(Config{Store: engine.NewMemoryStore(), DataDir: dir}); err != nil {
		t.Fatal(err)
	}
	if len(synced) == 0 || synced[len(synced)-1] != dir {
		t.Errorf("directories synced: %q, want %s last", synced, dir)
	}
	synced = nil
	if _, err := New(Config{Store: engine.NewMemoryStore(), DataDir: dir}); err != nil {
		t.Fatal(err)
	}
	if len(synced) != 0 {
		t.Errorf("reading an existing token synced %q", synced)
	}
}

// Issue 9 item 15: an admin listener on a non-loopback address without TLS
// is warned about at start-up.
func TestAdminNonLoopbackWarning(t *testing.T) {
	ts := startServer(t, Config{})
	if contains(ts.logs.String(), "admin listener") && contains(ts.logs.String(), "loopback") {
		t.Errorf("warning on a loopback admin listener:\n%s", ts.logs.String())
	}
	ts = startServer(t, Config{AdminAddr: "0.0.0.0:0"})
	logs := ts.logs.String()
	if !contains(logs, "level=WARN") || !contains(logs, "not a loopback address") || !contains(logs, "without TLS") {
		t.Errorf("no warning for an admin listener on all interfaces:\n%s", logs)
	}
	// With TLS it is the operator's choice: no warning.
	dir := t.TempDir()
	cert, key := tlstest.NewCA(t, "test CA").Server(t, "localhost").Write(t, dir, "admin")
	ts = startServer(t, Config{AdminAddr: "0.0.0.0:0", AdminTLS: &TLSFiles{CertFile: cert, KeyFile: key}})
	if logs := ts.logs.String(); contains(logs, "not a loopback address") {
		t.Errorf("warning for an admin listener with TLS:\n%s", logs)
	}
}
