package main

import (
	"encoding/pem"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/jwtgate/jwtgate/engine/enginetest"
	"github.com/jwtgate/jwtgate/internal/jwkstest"
	"github.com/jwtgate/jwtgate/internal/lifecycletest"
	"github.com/jwtgate/jwtgate/store/boltstore"
)

// TestCLIImportJWKS runs keys import-jwks, jwks-status and jwks-remove
// against a real server and a local TLS JWKS server.
func TestCLIImportJWKS(t *testing.T) {
	st, err := boltstore.Open(filepath.Join(t.TempDir(), "keys.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	j := jwkstest.NewJWKS(t, jwkstest.RSAJWK(enginetest.Key("rsa2048-a"), "ka"), jwkstest.RSAJWK(enginetest.Key("rsa1024"), "small"))
	n := jwkstest.Start(t, st, j, true)
	adm := []string{"--admin-url", n.Admin, "--admin-token", lifecycletest.RootToken}
	cli := func(args ...string) (int, string, string) {
		t.Helper()
		return runCLI(t, append(append([]string{"keys"}, args...), adm...)...)
	}
	code, out, errs := cli("import-jwks", "--project", "acme", "--url", j.URL(), "--refresh", "1h", "--grace", "1h")
	if code != 0 || !strings.Contains(out, `"ka"`) || !strings.Contains(errs, "key small not imported") {
		t.Fatalf("import-jwks: %d %q %q", code, out, errs)
	}
	n.VerifyOK(enginetest.Key("rsa2048-a"), "ka", "acme")
	code, out, _ = cli("jwks-status", "--project", "acme")
	if code != 0 || !strings.Contains(out, `"last_fetch_at"`) || !strings.Contains(out, j.URL()) {
		t.Fatalf("jwks-status: %d %q", code, out)
	}
	j.Mode(jwkstest.ModeFail)
	code, _, errs = cli("import-jwks", "--project", "acme", "--url", j.URL())
	if code != 1 || !strings.Contains(errs, "HTTP 500") {
		t.Fatalf("import-jwks of a failing server: %d %q, want exit 1 naming the failure", code, errs)
	}
	code, _, errs = cli("import-jwks", "--project", "acme")
	if code != 2 || !strings.Contains(errs, "--url") {
		t.Fatalf("import-jwks without --url: %d %q, want exit 2 naming --url", code, errs)
	}
	code, _, errs = cli("import-jwks", "--project", "acme", "--url", j.URL(), "--grace", "soon")
	if code != 2 || !strings.Contains(errs, "--grace") {
		t.Fatalf("import-jwks --grace soon: %d %q, want exit 2 naming --grace", code, errs)
	}
	code, _, errs = cli("import-jwks", "--project", "acme", "--url", "http://idp.example/jwks.json")
	if code != 1 || !strings.Contains(errs, "https") {
		t.Fatalf("import-jwks of an http:// URL: %d %q, want it refused", code, errs)
	}
	if code, out, _ = cli("jwks-remove", "--project", "acme"); code != 0 || !strings.Contains(out, "deleted") {
		t.Fatalf("jwks-remove: %d %q", code, out)
	}
	if code, _, errs = cli("jwks-status", "--project", "acme"); code != 1 || !strings.Contains(errs, "no JWKS source") {
		t.Fatalf("jwks-status after remove: %d %q", code, errs)
	}
}

// TestServeJWKSFlags: jwtgate serve with --jwks-ca-file (the local JWKS
// server's certificate) and --jwks-allow-private imports from a loopback
// JWKS server; bad values of the flags exit 2 naming the flag.
func TestServeJWKSFlags(t *testing.T) {
	dir := t.TempDir()
	for _, c := range []struct {
		args []string
		flag string
	}{
		{[]string{"--jwks-ca-file", filepath.Join(dir, "missing.pem")}, "--jwks-ca-file"},
		{[]string{"--jwks-ca-file", writeTestFile(t, dir, "notpem", "hello")}, "--jwks-ca-file"},
		{[]string{"--jwks-interval", "0s"}, "--jwks-interval"},
	} {
		code, _, errs := runCLI(t, append([]string{"serve", "--data-dir", filepath.Join(dir, "data"), "--addr", "127.0.0.1:0", "--admin-addr", "127.0.0.1:0"}, c.args...)...)
		if code != 2 || !strings.Contains(errs, c.flag) {
			t.Fatalf("serve %v: exit %d %q, want 2 naming %s", c.args, code, errs, c.flag)
		}
	}

	j := jwkstest.NewJWKS(t, jwkstest.RSAJWK(enginetest.Key("rsa2048-a"), "ka"))
	ca := writeTestFile(t, dir, "jwks-ca.pem", string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: j.TS.Certificate().Raw})))
	ch := startChild(t, filepath.Join(dir, "data2"), nil, "--jwks-allow-private", "--jwks-ca-file", ca)
	status, body, err := httpDo("PUT", "http://"+ch.admin+"/v1/projects/acme/jwks-source", ch.token(t), []byte(`{"url":"`+j.URL()+`"}`))
	if err != nil || status != 201 || !strings.Contains(string(body), `"imported_kids":["ka"]`) {
		t.Fatalf("PUT jwks-source on jwtgate serve: %d %s %v", status, body, err)
	}
	// Without the flags the same server (another one) refuses the address.
	ch2 := startChild(t, filepath.Join(dir, "data3"), nil)
	status, body, _ = httpDo("PUT", "http://"+ch2.admin+"/v1/projects/acme/jwks-source", ch2.token(t), []byte(`{"url":"`+j.URL()+`"}`))
	if status != 400 || !strings.Contains(string(body), "invalid_url") {
		t.Fatalf("PUT of a loopback JWKS URL without --jwks-allow-private: %d %s", status, body)
	}
}

func writeTestFile(t *testing.T, dir, name, content string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}
