package main

import (
	"path/filepath"
	"strings"
	"testing"

	"github.com/jwtgate/jwtgate/engine"
	"github.com/jwtgate/jwtgate/engine/enginetest"
	"github.com/jwtgate/jwtgate/internal/tlstest"
	"github.com/jwtgate/jwtgate/server"
	"github.com/jwtgate/jwtgate/server/servertest"
)

// mint over an https:// admin URL and attack an https:// verify URL, with
// the CA given by --ca-file and by $JWTGATE_CA_FILE.
func TestCLIOverTLS(t *testing.T) {
	dir := t.TempDir()
	ca := tlstest.NewCA(t, "loadgen test CA")
	cert, key := ca.Server(t, "jwtgate").Write(t, dir, "server")
	caFile := ca.WriteCA(t, dir, "ca.pem")
	files := &server.TLSFiles{CertFile: cert, KeyFile: key}
	srv := servertest.Start(t, server.Config{Store: engine.NewMemoryStore(), AdminToken: adminToken, TLS: files, AdminTLS: files})
	file := filepath.Join(dir, "targets.jsonl")
	args := []string{"mint", "--project", "myapp", "--count", "60", "--unique", "5",
		"--mix", "valid=3,expired=1,unknown_kid=1", "--key-file", enginetest.Testdata("keys", "rsa2048-a.pem"),
		"--admin-url", "https://" + srv.AdminAddr(), "--admin-token", adminToken,
		"--url", "https://" + srv.Addr() + "/v1/verify", "-o", file}

	// Without the CA the admin certificate is not trusted.
	if code, _, errs := runCLI(t, args...); code == 0 || !strings.Contains(errs, "certificate") {
		t.Fatalf("mint without --ca-file: exit %d\n%s", code, errs)
	}
	if code, _, errs := runCLI(t, append(args, "--ca-file", filepath.Join(dir, "nope.pem"))...); code == 0 || !strings.Contains(errs, "--ca-file") {
		t.Fatalf("mint with a missing --ca-file: exit %d\n%s", code, errs)
	}
	if code, out, errs := runCLI(t, append(args, "--ca-file", caFile)...); code != 0 {
		t.Fatalf("mint exit %d\n%s\n%s", code, out, errs)
	}
	t.Setenv("JWTGATE_CA_FILE", caFile)
	code, out, errs := runCLI(t, "attack", "-t", file, "--rate", "100/s", "--duration", "1s", "--connections", "2")
	if code != 0 || !strings.Contains(out, "0 mismatches") || !strings.Contains(out, "result      OK") {
		t.Fatalf("attack over https: exit %d\n%s\n%s", code, out, errs)
	}
}
