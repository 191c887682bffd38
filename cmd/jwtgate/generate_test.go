package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jwtgate/jwtgate/internal/customersample"
)

// TestCLIKeysGenerate: jwtgate keys generate writes the private key of a
// pair the server made to --out with mode 0600, prints the kid, and the
// customer's sample signs with that file tokens that verify. It never
// overwrites a file, and a refused request leaves no file behind.
func TestCLIKeysGenerate(t *testing.T) {
	srv := startInProcess(t)
	dir := t.TempDir()
	out := filepath.Join(dir, "acme.pem")
	admin := []string{"--admin-url", "http://" + srv.AdminAddr(), "--admin-token", testToken, "--project", "acme"}
	run := func(extra ...string) (int, string, string) {
		t.Helper()
		return runCLI(t, append(append([]string{"keys", "generate"}, admin...), extra...)...)
	}

	code, stdout, errs := run("--label", "prod", "--out", out)
	if code != 0 {
		t.Fatalf("generate: %d %s", code, errs)
	}
	kid := strings.TrimSpace(stdout)
	if kid == "" || strings.ContainsAny(kid, " \n{") || !strings.Contains(errs, out) {
		t.Fatalf("generate printed %q (stderr %q), want the kid", stdout, errs)
	}
	st, err := os.Stat(out)
	if err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("private key file mode %v (%v), want 0600", st.Mode().Perm(), err)
	}
	pemBytes, _ := os.ReadFile(out)
	if !strings.HasPrefix(string(pemBytes), "-----BEGIN PRIVATE KEY-----") {
		t.Fatalf("file does not hold a PEM private key: %.40q", pemBytes)
	}
	tok, err := customersample.SignFile(out, kid, "acme", time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if status, _, body := verifyHTTP(t, srv.Addr(), tok); status != 200 || body["kid"] != kid {
		t.Fatalf("verify: %d %v", status, body)
	}
	// jwtgate mint takes the file too.
	code, stdout, errs = runCLI(t, "mint", "--key", out, "--kid", kid, "--project", "acme", "--ttl", "5m", "--sub", "alice")
	if code != 0 {
		t.Fatalf("mint with the generated key: %d %s", code, errs)
	}
	if status, _, body := verifyHTTP(t, srv.Addr(), strings.TrimSpace(stdout)); status != 200 || body["sub"] != "alice" {
		t.Fatalf("verify the minted token: %d %v", status, body)
	}
	code, stdout, _ = runCLI(t, append([]string{"keys", "get", "--kid", kid}, admin...)...)
	var key map[string]any
	if code != 0 || json.Unmarshal([]byte(stdout), &key) != nil || key["label"] != "prod" || key["bits"] != float64(2048) || key["verified_count"] != float64(2) {
		t.Fatalf("get: %d %s", code, stdout)
	}

	// Never overwrites; no second key is made.
	code, _, errs = run("--out", out)
	if code != exitError || !strings.Contains(errs, "exists") || !strings.Contains(errs, out) {
		t.Fatalf("existing --out: %d %s", code, errs)
	}
	if again, _ := os.ReadFile(out); string(again) != string(pemBytes) {
		t.Fatal("the existing file was changed")
	}
	// Refused by the server: the error names the cause, no file is left.
	other := filepath.Join(dir, "other.pem")
	code, _, errs = run("--bits", "1024", "--out", other)
	if code != exitError || !strings.Contains(errs, "invalid_bits") || !strings.Contains(errs, "2048") {
		t.Fatalf("--bits 1024: %d %s", code, errs)
	}
	if _, err := os.Stat(other); !os.IsNotExist(err) {
		t.Fatalf("a refused generation left %s behind (%v)", other, err)
	}
	code, stdout, _ = runCLI(t, append([]string{"keys", "list"}, admin...)...)
	if code != 0 || strings.Count(stdout, `"kid"`) != 1 {
		t.Fatalf("list after refusals: %d %s", code, stdout)
	}
	// Usage errors.
	if code, _, errs := run(); code != exitUsage || !strings.Contains(errs, "--out") {
		t.Fatalf("no --out: %d %s", code, errs)
	}
}
