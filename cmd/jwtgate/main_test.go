package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jwtgate/jwtgate/engine"
	"github.com/jwtgate/jwtgate/server"
)

const testToken = "cli-test-admin-token-0123456789"

func runCLI(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	var out, errb bytes.Buffer
	code := run(args, &out, &errb)
	return code, out.String(), errb.String()
}

func startInProcess(t *testing.T, opts ...engine.Option) *server.Server {
	t.Helper()
	srv, err := server.New(server.Config{
		Addr: "127.0.0.1:0", AdminAddr: "127.0.0.1:0", Store: engine.NewMemoryStore(),
		AdminToken: testToken, EngineOptions: opts,
		ClaimHeaders: map[string]string{"groupRef": "X-Group-Ref"},
		Logger:       slog.New(slog.NewTextHandler(io.Discard, nil)),
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Shutdown(context.Background()) })
	return srv
}

func verifyHTTP(t *testing.T, addr, tok string) (int, http.Header, map[string]any) {
	t.Helper()
	req, _ := http.NewRequest("GET", "http://"+addr+"/v1/verify", nil)
	req.Header.Set("Authorization", "Bearer "+tok)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var m map[string]any
	json.NewDecoder(resp.Body).Decode(&m)
	return resp.StatusCode, resp.Header, m
}

// keygen -> keys add -> mint -> verify, all through run().
func TestCLIKeygenAddMintVerify(t *testing.T) {
	srv := startInProcess(t, engine.WithRequiredClaims("groupRef"))
	dir := t.TempDir()
	prefix := filepath.Join(dir, "acme")
	code, out, errs := runCLI(t, "keygen", "--out", prefix)
	if code != 0 {
		t.Fatalf("keygen: %d %s", code, errs)
	}
	if !strings.Contains(out, prefix+".pem") {
		t.Fatalf("keygen output %q", out)
	}
	st, err := os.Stat(prefix + ".pem")
	if err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("private key mode %v (%v)", st.Mode().Perm(), err)
	}
	if code, _, _ := runCLI(t, "keygen", "--out", prefix); code == 0 {
		t.Fatal("keygen overwrote an existing key without --force")
	}
	tokenFile := filepath.Join(dir, "admin-token")
	os.WriteFile(tokenFile, []byte(testToken+"\n"), 0o600)
	admin := []string{"--admin-url", "http://" + srv.AdminAddr(), "--admin-token-file", tokenFile, "--project", "acme"}

	code, out, errs = runCLI(t, append([]string{"keys", "add", "--public-key", prefix + ".pub.pem", "--label", "prod"}, admin...)...)
	if code != 0 {
		t.Fatalf("keys add: %d %s", code, errs)
	}
	var key map[string]any
	if err := json.Unmarshal([]byte(out), &key); err != nil || key["label"] != "prod" || key["bits"] != float64(2048) {
		t.Fatalf("keys add output %q", out)
	}
	kid := key["kid"].(string)

	code, out, errs = runCLI(t, "mint", "--key", prefix+".pem", "--kid", kid, "--project", "acme", "--ttl", "5m", "--sub", "alice", "--claim", "groupRef=g1", "--claim-json", "tier=3")
	if code != 0 {
		t.Fatalf("mint: %d %s", code, errs)
	}
	tok := strings.TrimSpace(out)
	status, hdr, body := verifyHTTP(t, srv.Addr(), tok)
	if status != 200 || body["kid"] != kid || body["sub"] != "alice" || hdr.Get("X-Group-Ref") != "g1" {
		t.Fatalf("verify: %d %v %v", status, body, hdr)
	}
	if c := body["claims"].(map[string]any); c["tier"] != float64(3) || c["exp"].(float64)-c["iat"].(float64) != 300 {
		t.Fatalf("claims %v", c)
	}
	// An 11-minute token is refused.
	_, out, _ = runCLI(t, "mint", "--key", prefix+".pem", "--kid", kid, "--project", "acme", "--ttl", "11m", "--claim", "groupRef=g1")
	if status, _, body := verifyHTTP(t, srv.Addr(), strings.TrimSpace(out)); status != 401 || body["error"] != "ttl_exceeded" {
		t.Fatalf("11-minute token: %d %v", status, body)
	}

	// list, get, update, delete; the token from the environment.
	t.Setenv("JWTGATE_ADMIN_TOKEN", testToken)
	envAdmin := []string{"--admin-url", "http://" + srv.AdminAddr(), "--project", "acme"}
	code, out, errs = runCLI(t, append([]string{"keys", "list"}, envAdmin...)...)
	if code != 0 || !strings.Contains(out, kid) {
		t.Fatalf("list: %d %q %s", code, out, errs)
	}
	code, out, _ = runCLI(t, append([]string{"keys", "get", "--kid", kid}, envAdmin...)...)
	if code != 0 || !strings.Contains(out, `"verified_count": 1`) {
		t.Fatalf("get: %d %q", code, out)
	}
	// The key verified a token just now: the guardrail refuses, --force overrides.
	code, _, errs = runCLI(t, append([]string{"keys", "update", "--kid", kid, "--status", "inactive"}, envAdmin...)...)
	if code != 1 || !strings.Contains(errs, "409 key_in_use") || !strings.Contains(errs, "--force") {
		t.Fatalf("update of a key in use: %d %q", code, errs)
	}
	code, out, _ = runCLI(t, append([]string{"keys", "update", "--kid", kid, "--status", "inactive", "--force"}, envAdmin...)...)
	if code != 0 || !strings.Contains(out, `"status": "inactive"`) {
		t.Fatalf("update: %d %q", code, out)
	}
	if status, _, body := verifyHTTP(t, srv.Addr(), tok); status != 401 || body["error"] != "key_inactive" {
		t.Fatalf("after deactivation: %d %v", status, body)
	}
	if code, _, _ := runCLI(t, append([]string{"keys", "delete", "--kid", kid}, envAdmin...)...); code != 0 {
		t.Fatalf("delete: %d", code)
	}
	code, _, errs = runCLI(t, append([]string{"keys", "get", "--kid", kid}, envAdmin...)...)
	if code != 1 || !strings.Contains(errs, "404 not_found") {
		t.Fatalf("get deleted: %d %s", code, errs)
	}
	// Wrong token: a clear error.
	code, _, errs = runCLI(t, "keys", "list", "--admin-url", "http://"+srv.AdminAddr(), "--project", "acme", "--admin-token", "wrong-wrong-wrong-wrong")
	if code != 1 || !strings.Contains(errs, "401 unauthorized") {
		t.Fatalf("wrong token: %d %s", code, errs)
	}
}

func TestCLIUsageErrors(t *testing.T) {
	for _, args := range [][]string{
		{},
		{"nope"},
		{"serve", "--leeway"},
		{"serve", "extra"},
		{"keygen", "--bits", "1024"},
		{"mint", "--kid", "k"},
		{"mint", "--key", "x", "--kid", "k", "--project", "p", "--claim", "novalue"},
		{"keys"},
		{"keys", "add"},
		{"keys", "frobnicate", "--project", "p", "--admin-token", "x"},
	} {
		if code, _, _ := runCLI(t, args...); code != exitUsage {
			t.Errorf("%q: exit %d, want %d", args, code, exitUsage)
		}
	}
	code, _, errs := runCLI(t, "serve", "--help")
	if code != 0 || !strings.Contains(errs, "--require-claims") || !strings.Contains(errs, "JWTGATE_") {
		t.Fatalf("serve --help: %d %s", code, errs)
	}
}

func TestServeEnvAndBadConfig(t *testing.T) {
	dir := t.TempDir()
	t.Setenv("JWTGATE_LEEWAY", "1.5s") // not whole seconds: the engine refuses it
	code, _, errs := runCLI(t, "serve", "--data-dir", dir, "--addr", "127.0.0.1:0", "--admin-addr", "127.0.0.1:0")
	if code != exitError || !strings.Contains(errs, "leeway") {
		t.Fatalf("bad env leeway: %d %s", code, errs)
	}
	t.Setenv("JWTGATE_LEEWAY", "")
	os.Unsetenv("JWTGATE_LEEWAY")
	code, _, errs = runCLI(t, "serve", "--data-dir", dir, "--store", "mysql://x")
	if code != exitError || !strings.Contains(errs, "supported schemes") {
		t.Fatalf("unknown store scheme: %d %s", code, errs)
	}
	code, _, errs = runCLI(t, "serve", "--data-dir", dir, "--claim-header", "groupRef")
	if code != exitUsage || !strings.Contains(errs, "claim=Header") {
		t.Fatalf("bad claim header: %d %s", code, errs)
	}
	code, _, errs = runCLI(t, "serve", "--data-dir", dir, "--log-level", "verbose")
	if code != exitUsage || !strings.Contains(errs, `--log-level "verbose": want debug, info, warn or error`) {
		t.Fatalf("bad log level: %d %s", code, errs)
	}
	code, _, errs = runCLI(t, "serve", "--data-dir", dir, "--log-format", "xml")
	if code != exitUsage || !strings.Contains(errs, `--log-format "xml": want text or json`) {
		t.Fatalf("bad log format: %d %s", code, errs)
	}
}

func TestEnvName(t *testing.T) {
	for flag, want := range map[string]string{"addr": "JWTGATE_ADDR", "admin-addr": "JWTGATE_ADMIN_ADDR", "max-token-bytes": "JWTGATE_MAX_TOKEN_BYTES"} {
		if got := envName(flag); got != want {
			t.Errorf("%s: %s", flag, got)
		}
	}
	_ = time.Second
}

// TestTokenCacheBytesFlag: --token-cache-bytes takes bytes or a binary
// suffix, from the command line or JWTGATE_TOKEN_CACHE_BYTES, defaults to
// 64 MiB, and a bad value is a usage error naming the flag.
func TestTokenCacheBytesFlag(t *testing.T) {
	for in, want := range map[string]int64{"0": 0, "1048576": 1 << 20, "512KiB": 512 << 10, "64MiB": 64 << 20, "2GiB": 2 << 30, "100B": 100} {
		var b byteSize
		if err := b.Set(in); err != nil || int64(b) != want {
			t.Errorf("Set(%q) = %d %v, want %d", in, b, err, want)
		}
	}
	for _, in := range []string{"", "-1", "1.5MiB", "64MB", "lots", "99999999999GiB"} {
		var b byteSize
		if err := b.Set(in); err == nil {
			t.Errorf("Set(%q) accepted: %d", in, b)
		}
	}
	var f serveFlags
	fs := serveFlagSet(&f, io.Discard)
	if err := fs.Parse(nil); err != nil || int64(f.tokenCacheBytes) != engine.DefaultTokenCacheBytes || fs.Lookup("token-cache-bytes").DefValue != "64MiB" {
		t.Fatalf("default: %d %v", f.tokenCacheBytes, err)
	}
	t.Setenv("JWTGATE_TOKEN_CACHE_BYTES", "3MiB")
	f = serveFlags{}
	fs = serveFlagSet(&f, io.Discard)
	if err := fs.Parse(nil); err != nil {
		t.Fatal(err)
	}
	if err := applyEnv(fs); err != nil || f.tokenCacheBytes != 3<<20 {
		t.Fatalf("from the environment: %d %v", f.tokenCacheBytes, err)
	}
	code, _, errs := runCLI(t, "serve", "--token-cache-bytes", "64MB")
	if code != exitUsage || !strings.Contains(errs, "token-cache-bytes") || !strings.Contains(errs, "MiB") {
		t.Fatalf("bad --token-cache-bytes: %d %s", code, errs)
	}
}

// TestKeyCacheBytesFlag: --key-cache-bytes defaults to engine's bound (about
// 100k 2048-bit keys), takes a binary suffix, and an out-of-range value is a
// usage error naming the flag and the limit.
func TestKeyCacheBytesFlag(t *testing.T) {
	var f serveFlags
	fs := serveFlagSet(&f, io.Discard)
	if err := fs.Parse([]string{"--key-cache-bytes", "256MiB"}); err != nil || f.keyCacheBytes != 256<<20 {
		t.Fatalf("--key-cache-bytes 256MiB: %d %v", f.keyCacheBytes, err)
	}
	if def := fs.Lookup("key-cache-bytes").DefValue; def != "96MiB" {
		t.Fatalf("default %s, want 96MiB", def)
	}
	if n := engine.KeyCacheKeysFor(engine.DefaultKeyCacheBytes); n < 100_000 {
		t.Fatalf("the default key cache holds %d 2048-bit keys, want at least 100,000", n)
	}
	code, _, errs := runCLI(t, "serve", "--key-cache-bytes", "1KiB")
	if code != exitUsage || !strings.Contains(errs, "--key-cache-bytes 1KiB") || !strings.Contains(errs, "64KiB") {
		t.Fatalf("too small --key-cache-bytes: %d %s", code, errs)
	}
}

// TestMaxStaleFlag: --max-stale defaults to 5s and refuses a negative bound.
func TestMaxStaleFlag(t *testing.T) {
	var f serveFlags
	fs := serveFlagSet(&f, io.Discard)
	if err := fs.Parse(nil); err != nil || f.maxStale != 5*time.Second {
		t.Fatalf("default --max-stale: %v %v", f.maxStale, err)
	}
	code, _, errs := runCLI(t, "serve", "--data-dir", t.TempDir(), "--max-stale", "-1s")
	if code != exitUsage || !strings.Contains(errs, "--max-stale -1s: must not be negative") {
		t.Fatalf("negative --max-stale: %d %s", code, errs)
	}
	// The value at fault is named beside the flag.
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"keygen", "--bits", "1024", "--out", filepath.Join(t.TempDir(), "k")}, "--bits 1024: want 2048, 3072 or 4096"},
		{[]string{"mint", "--key", "k.pem", "--kid", "k", "--project", "p", "--ttl", "500ms"}, "--ttl 500ms: want at least 1s"},
	} {
		if code, _, errs := runCLI(t, tc.args...); code != exitUsage || !strings.Contains(errs, tc.want) {
			t.Errorf("%q: exit %d, stderr %q; want exit 2 containing %q", tc.args, code, errs, tc.want)
		}
	}
}

// Every flag error names the flag and points to --help, with exit 2.
func TestCLIFlagErrorsNamed(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"serve", "--adress", "x"}, "--adress"},
		{[]string{"serve", "--max-ttl", "10"}, "--max-ttl"},
		{[]string{"mint", "--tll", "1m"}, "--tll"},
		{[]string{"keygen", "--bits", "abc"}, "--bits"},
		{[]string{"keys", "list", "--bogus"}, "--bogus"},
		{[]string{"keys", "list", "--kid", "k"}, "--kid"}, // not a flag of list
		{[]string{"serve", "extra"}, "extra"},
	} {
		code, out, errs := runCLI(t, tc.args...)
		prog := "jwtgate " + tc.args[0]
		if tc.args[0] == "keys" {
			prog += " " + tc.args[1]
		}
		if code != exitUsage || out != "" || !strings.Contains(errs, tc.want) || !strings.Contains(errs, "Run '"+prog+" --help'") {
			t.Errorf("%q: exit %d, stderr %q; want exit 2 naming %s and pointing to %s --help", tc.args, code, errs, tc.want, prog)
		}
	}
}

// Each keys subcommand has its own help: usage line, example, and only
// its own flags; no help leaks pflag type names.
func TestCLIHelpPerSubcommand(t *testing.T) {
	leaks := []string{"stringToString", "stringArray", "stringSlice", "[=true|false]", " strings "}
	check := func(name, help string) {
		t.Helper()
		for _, l := range leaks {
			if strings.Contains(help, l) {
				t.Errorf("%s --help shows the pflag type %q:\n%s", name, l, help)
			}
		}
		if strings.HasSuffix(strings.TrimSpace(help), "Flags:") {
			t.Errorf("%s --help ends with a dangling Flags:", name)
		}
		if !strings.HasPrefix(help, "Usage: ") {
			t.Errorf("%s --help does not start with \"Usage: \":\n%s", name, help)
		}
	}
	for _, cmd := range []string{"serve", "mint", "keygen"} {
		code, _, errs := runCLI(t, cmd, "--help")
		if code != exitOK || !strings.Contains(errs, "Example:") {
			t.Errorf("%s --help: exit %d, no example:\n%s", cmd, code, errs)
		}
		check(cmd, errs)
	}
	helps := map[string]string{}
	for _, c := range keysCommands {
		code, _, errs := runCLI(t, "keys", c.name, "--help")
		if code != exitOK {
			t.Errorf("keys %s --help: exit %d", c.name, code)
		}
		check("keys "+c.name, errs)
		if !strings.Contains(errs, "Usage: jwtgate keys "+c.name+" --project ID") || !strings.Contains(errs, "Example:\n  "+c.example) {
			t.Errorf("keys %s --help lacks its usage line or example:\n%s", c.name, errs)
		}
		for _, f := range c.flags {
			if !strings.Contains(errs, "--"+f+" ") {
				t.Errorf("keys %s --help lacks its flag --%s", c.name, f)
			}
		}
		helps[c.name] = errs
	}
	if strings.Contains(helps["list"], "--public-key") || strings.Contains(helps["delete"], "--status") {
		t.Error("a keys subcommand's help lists another subcommand's flags")
	}
	if helps["add"] == helps["get"] {
		t.Error("keys add and keys get print the same help")
	}
	_, _, errs := runCLI(t, "keys", "--help")
	check("keys", errs)
	_, _, errs = runCLI(t)
	if !strings.HasPrefix(errs, "jwtgate verifies") || !strings.Contains(errs, "\nUsage:\n") {
		t.Errorf("jwtgate usage: %s", errs)
	}
}

// mint refuses registered claims in --claim/--claim-json and warns when
// --ttl exceeds the default server max TTL.
func TestCLIMintRegisteredClaimsAndTTL(t *testing.T) {
	dir := t.TempDir()
	prefix := filepath.Join(dir, "k")
	if code, _, errs := runCLI(t, "keygen", "--out", prefix); code != 0 {
		t.Fatal(errs)
	}
	base := []string{"mint", "--key", prefix + ".pem", "--kid", "k1", "--project", "acme"}
	for _, tc := range []struct{ flag, val, want string }{
		{"--claim", "exp=5", "--ttl"},
		{"--claim", "aud=x", "--project"},
		{"--claim", "sub=b", "--sub"},
		{"--claim", "iat=1", "--ttl"},
		{"--claim", "nbf=1", "nbf"},
		{"--claim-json", "exp=5", "--ttl"},
		{"--claim-json", "iss=\"me\"", "--iss"},
	} {
		code, out, errs := runCLI(t, append(base, tc.flag, tc.val, "--sub", "a")...)
		if code != exitUsage || out != "" || !strings.Contains(errs, tc.val) || !strings.Contains(errs, tc.want) {
			t.Errorf("%s %s: exit %d out %q err %q; want exit 2 naming %s", tc.flag, tc.val, code, out, errs, tc.want)
		}
	}
	code, out, errs := runCLI(t, append(base, "--ttl", "1h", "--iss", "me")...)
	if code != exitOK || out == "" || !strings.Contains(errs, "warning: --ttl 1h0m0s is longer than the server's default --max-ttl (10m0s)") {
		t.Fatalf("--ttl 1h: exit %d, stderr %q", code, errs)
	}
	if _, _, errs := runCLI(t, append(base, "--ttl", "10m")...); errs != "" {
		t.Errorf("--ttl 10m (the default max) warned: %q", errs)
	}
}

// keys add refuses a private key without sending anything; a URL without
// a scheme and the verify port get clear messages.
func TestCLIKeysLocalChecks(t *testing.T) {
	var requests atomic.Int64
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { requests.Add(1) }))
	defer ts.Close()
	dir := t.TempDir()
	prefix := filepath.Join(dir, "k")
	if code, _, errs := runCLI(t, "keygen", "--out", prefix); code != 0 {
		t.Fatal(errs)
	}
	jwkPriv := filepath.Join(dir, "priv.jwk")
	os.WriteFile(jwkPriv, []byte(`{"kty":"RSA","n":"AQAB","e":"AQAB","d":"AQAB"}`), 0o600)
	admin := []string{"--admin-url", ts.URL, "--admin-token", testToken, "--project", "acme"}
	for _, file := range []string{prefix + ".pem", jwkPriv} {
		code, _, errs := runCLI(t, append([]string{"keys", "add", "--public-key", file}, admin...)...)
		if code != exitError || !strings.Contains(errs, "private key") || !strings.Contains(errs, "nothing was sent") || !strings.Contains(errs, "openssl pkey -in") {
			t.Errorf("keys add %s: exit %d, %q", file, code, errs)
		}
	}
	if n := requests.Load(); n != 0 {
		t.Fatalf("keys add sent %d requests carrying a private key", n)
	}

	code, _, errs := runCLI(t, "keys", "list", "--project", "acme", "--admin-token", testToken, "--admin-url", "127.0.0.1:8081")
	if code != exitUsage || !strings.Contains(errs, `--admin-url "127.0.0.1:8081": want an http:// or https:// URL`) {
		t.Errorf("admin URL without scheme: exit %d, %q", code, errs)
	}

	srv := startInProcess(t)
	code, _, errs = runCLI(t, "keys", "list", "--project", "acme", "--admin-token", testToken, "--admin-url", "http://"+srv.Addr())
	if code != exitError || !strings.Contains(errs, "looks like the verify listener") || !strings.Contains(errs, "--admin-url") {
		t.Errorf("keys at the verify port: exit %d, %q", code, errs)
	}
}
