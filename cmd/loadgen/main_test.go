package main

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jwtgate/jwtgate/engine"
	"github.com/jwtgate/jwtgate/engine/enginetest"
	"github.com/jwtgate/jwtgate/internal/apitest"
	"github.com/jwtgate/jwtgate/loadgen"
	"github.com/jwtgate/jwtgate/server"
	"github.com/jwtgate/jwtgate/server/servertest"
	vegeta "github.com/tsenart/vegeta/v12/lib"
)

const adminToken = "loadgen-cli-test-admin-token-0123456789"

func startJWTGate(t *testing.T, opts ...engine.Option) *server.Server {
	t.Helper()
	return servertest.Start(t, server.Config{Store: engine.NewMemoryStore(), AdminToken: adminToken, EngineOptions: opts})
}

func runCLI(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	var out, errb bytes.Buffer
	code := run(args, &out, &errb)
	return code, out.String(), errb.String()
}

const everyClass = "valid=4,missing_token=1,token_too_large=1,malformed=1,unsupported_algorithm=1,unsupported_header=1," +
	"missing_kid=1,unknown_kid=1,key_inactive=1,missing_claim=1,expired=1,not_yet_valid=1,issued_in_future=1," +
	"ttl_exceeded=1,audience_mismatch=1,invalid_signature=1"

// mint registers the fixed test keys with srv and writes targets.
func mint(t *testing.T, srv *server.Server, count int) string {
	t.Helper()
	file := filepath.Join(t.TempDir(), "targets.jsonl")
	code, out, errs := runCLI(t, "mint", "--project", "myapp", "--count", itoa(count), "--unique", "10",
		"--mix", everyClass, "--key-file", enginetest.Testdata("keys", "rsa2048-a.pem"),
		"--key-file", enginetest.Testdata("keys", "rsa2048-b.pem"),
		"--admin-url", "http://"+srv.AdminAddr(), "--admin-token", adminToken,
		"--url", "http://"+srv.Addr()+"/v1/verify", "-o", file)
	if code != 0 {
		t.Fatalf("mint exit %d\n%s\n%s", code, out, errs)
	}
	if !strings.Contains(out, "minted "+itoa(count)+" targets") || !strings.Contains(errs, "tokens/s") {
		t.Errorf("mint output:\n%s\n%s", out, errs)
	}
	b, err := os.ReadFile(loadgen.ManifestPath(file))
	if err != nil {
		t.Fatal(err)
	}
	var m loadgen.Manifest
	if err := json.Unmarshal(b, &m); err != nil || m.Count != count || m.ValidUntil.Before(time.Now()) {
		t.Fatalf("manifest %v %+v", err, m)
	}
	if bytes.Contains(b, []byte("PRIVATE")) {
		t.Fatal("manifest holds key material")
	}
	return file
}

func itoa(n int) string { return strconv.Itoa(n) }

func TestCLIAttackCorrectServer(t *testing.T) {
	srv := startJWTGate(t)
	file := mint(t, srv, 400)
	outDir := filepath.Join(t.TempDir(), "out")
	code, out, errs := runCLI(t, "attack", "-t", file, "--rate", "150/s", "--duration", "2s", "--connections", "4", "-o", outDir)
	if code != 0 {
		t.Fatalf("attack exit %d\n%s\n%s", code, out, errs)
	}
	for _, want := range []string{"0 mismatches", "result      OK", "latency     p50", "generator   CPU", "key_inactive"} {
		if !strings.Contains(out, want) {
			t.Errorf("report lacks %q:\n%s", want, out)
		}
	}
	// The results are Vegeta's: its decoder reads them back, one per request.
	f, err := os.Open(filepath.Join(outDir, loadgen.ResultsFile))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	dec := vegeta.NewDecoder(f)
	n := 0
	for {
		var r vegeta.Result
		if err := dec.Decode(&r); err != nil {
			break
		}
		n++
	}
	var sum loadgen.Report
	b, _ := os.ReadFile(filepath.Join(outDir, loadgen.SummaryFile))
	if err := json.Unmarshal(b, &sum); err != nil || uint64(n) != sum.Requests || n < 200 {
		t.Errorf("results %d, summary %+v (%v)", n, sum.Requests, err)
	}
	if b, err := os.ReadFile(filepath.Join(outDir, loadgen.PlotFile)); err != nil || !bytes.Contains(b, []byte("<html")) {
		t.Errorf("plot: %v", err)
	}
}

func TestCLIAttackWarnsOnStaleTargets(t *testing.T) {
	srv := startJWTGate(t)
	file := mint(t, srv, 50)
	// Pretend the file was minted an hour ago: its valid tokens expired.
	b, _ := os.ReadFile(loadgen.ManifestPath(file))
	var m loadgen.Manifest
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	m.MintedAt, m.ValidUntil = m.MintedAt.Add(-time.Hour), m.ValidUntil.Add(-time.Hour)
	f, _ := os.Create(loadgen.ManifestPath(file))
	loadgen.WriteManifest(f, &m)
	f.Close()
	_, _, errs := runCLI(t, "attack", "-t", file, "--rate", "50/s", "--duration", "200ms")
	if !strings.Contains(errs, "WARNING") || !strings.Contains(errs, "mint again") {
		t.Errorf("no staleness warning:\n%s", errs)
	}
	os.Remove(loadgen.ManifestPath(file))
	_, _, errs = runCLI(t, "attack", "-t", file, "--rate", "50/s", "--duration", "200ms")
	if !strings.Contains(errs, "no manifest") {
		t.Errorf("no missing-manifest warning:\n%s", errs)
	}
}

func TestCLIAttackCatchesMisconfiguredServer(t *testing.T) {
	srv := startJWTGate(t, engine.WithMaxTTL(2*time.Hour))
	file := mint(t, srv, 200)
	code, out, _ := runCLI(t, "attack", "-t", file, "--rate", "200/s", "--duration", "1s", "--connections", "2")
	if code != exitMismatch {
		t.Fatalf("exit %d against a server with a 2h max TTL, want %d\n%s", code, exitMismatch, out)
	}
	if !strings.Contains(out, "expected ttl_exceeded, got HTTP 200 valid") || !strings.Contains(out, "FAIL") {
		t.Errorf("report:\n%s", out)
	}
}

func TestCLICapacity(t *testing.T) {
	srv := startJWTGate(t)
	file := mint(t, srv, 200)
	dir := t.TempDir()
	code, out, errs := runCLI(t, "capacity", "-t", file, "--slo", "p99=2s", "--start", "50", "--max", "200",
		"--step-duration", "400ms", "--max-steps", "4", "--connections", "4", "-o", dir)
	if code != 0 {
		t.Fatalf("capacity exit %d\n%s\n%s", code, out, errs)
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	// Every step passed up to --max: the capacity is only a lower bound.
	if last := lines[len(lines)-1]; last != "capacity: >= 200 req/s at p99 <= 2s (no step failed; raise --max or --max-steps)" {
		t.Errorf("last line %q\n%s", last, out)
	}
	if !strings.HasPrefix(lines[0], "step") || len(lines) < 5 {
		t.Errorf("table:\n%s", out)
	}
	if b, err := os.ReadFile(filepath.Join(dir, capacitySVG)); err != nil || !bytes.HasPrefix(b, []byte("<svg")) {
		t.Errorf("svg: %v", err)
	}
}

func TestCLIUsageErrors(t *testing.T) {
	dir := t.TempDir()
	remote := filepath.Join(dir, "remote.jsonl")
	os.WriteFile(remote, []byte(`{"method":"GET","url":"http://192.0.2.1:8080/v1/verify","header":{"X-Loadgen-Expect":["valid"]}}`+"\n"), 0o644)
	for _, tc := range []struct {
		args []string
		code int
		want string
	}{
		{nil, exitUsage, "Usage:"},
		{[]string{"bogus"}, exitUsage, "unknown command"},
		{[]string{"help"}, exitOK, ""},
		{[]string{"attack", "--help"}, exitOK, "--rate"},
		{[]string{"attack"}, exitUsage, "--targets is required"},
		{[]string{"attack", "-t", remote, "--duration", "1s"}, exitUsage, "--allow-remote"},
		{[]string{"attack", "-t", remote, "--duration", "2h"}, exitUsage, "--duration"},
		{[]string{"attack", "-t", remote, "--rate", "fast"}, exitUsage, "rate"},
		{[]string{"capacity", "-t", remote, "--slo", "p99"}, exitUsage, "SLO"},
		{[]string{"mint", "--count", "1"}, exitUsage, "--output is required"},
		// Checked before any key is generated or registered.
		{[]string{"mint", "-o", filepath.Join(dir, "x"), "--count", "0", "--admin-url", "http://192.0.2.1:8081"}, exitUsage, "--count 0 is out of range: want 1 to 100000000"},
		{[]string{"mint", "-o", filepath.Join(dir, "x"), "--ttl", "500ms", "--admin-url", "http://192.0.2.1:8081"}, exitUsage, "--ttl 500ms is out of range"},
		{[]string{"mint", "-o", filepath.Join(dir, "x"), "--keys", "0", "--admin-url", "http://192.0.2.1:8081"}, exitUsage, "--keys 0 is out of range"},
		{[]string{"mint", "-o", filepath.Join(dir, "x"), "--key-bits", "1024", "--admin-url", "http://192.0.2.1:8081"}, exitUsage, "--key-bits 1024 is out of range"},
		{[]string{"mint", "-o", filepath.Join(dir, "x"), "--mix", "valid=1,bogus=2"}, exitUsage, "unknown class"},
		{[]string{"mint", "-o", filepath.Join(dir, "x"), "--key-file", enginetest.Testdata("keys", "rsa2048-a.pem"),
			"--admin-url", "http://192.0.2.1:8081", "--admin-token", "x"}, exitUsage, "not a loopback"},
	} {
		code, out, errs := runCLI(t, tc.args...)
		if code != tc.code || !strings.Contains(out+errs, tc.want) {
			t.Errorf("%q: exit %d, output %q %q; want exit %d containing %q", tc.args, code, out, errs, tc.code, tc.want)
		}
	}
}

// loadgen follows jwtgate's conventions: flag errors named with a pointer
// to --help and exit 2, failures at run time exit 1, "Usage:" help with no
// pflag type names.
func TestCLIConventions(t *testing.T) {
	for _, tc := range []struct {
		args []string
		code int
		want []string
	}{
		{[]string{"mint", "--cout", "5"}, exitUsage, []string{"--cout", "Run 'loadgen mint --help'"}},
		{[]string{"attack", "--rate", "fast", "-t", "x"}, exitUsage, []string{"--rate", "Run 'loadgen attack --help'"}},
		{[]string{"capacity", "--slo", "p99", "-t", "x"}, exitUsage, []string{"--slo", "pNN=duration"}},
		{[]string{"capacity", "--slo", "p100=1ms", "-t", "x"}, exitUsage, []string{"0 < NN < 100"}},
		{[]string{"clean"}, exitUsage, []string{"--targets is required"}},
		{[]string{"mint", "-o", filepath.Join(t.TempDir(), "t"), "--admin-url", "127.0.0.1:8081", "--admin-token", "x"}, exitUsage, []string{"want an http:// or https:// URL"}},
		// Failures at run time: 1.
		{[]string{"attack", "-t", filepath.Join(t.TempDir(), "missing.jsonl")}, exitFailure, []string{"missing.jsonl"}},
		{[]string{"clean", "-t", filepath.Join(t.TempDir(), "missing.jsonl"), "--admin-token", "x"}, exitFailure, []string{"manifest"}},
	} {
		code, _, errs := runCLI(t, tc.args...)
		if code != tc.code {
			t.Errorf("%q: exit %d, want %d; stderr %q", tc.args, code, tc.code, errs)
		}
		for _, w := range tc.want {
			if !strings.Contains(errs, w) {
				t.Errorf("%q: stderr %q lacks %q", tc.args, errs, w)
			}
		}
	}
	// The --slo help, error and parser agree: what the help names parses.
	_, _, help := runCLI(t, "capacity", "--help")
	if !strings.Contains(help, "p99.9") || !strings.Contains(help, "max=duration") {
		t.Errorf("capacity --slo help:\n%s", help)
	}
	for _, s := range []string{"p50=1ms", "p95=1ms", "p99.9=1ms", "max=1s"} {
		if _, err := loadgen.ParseSLO(s); err != nil {
			t.Errorf("the help's %s does not parse: %v", s, err)
		}
	}
	// capacity -o describes capacity's files, not attack's.
	if i := strings.Index(help, "--output"); i < 0 || !strings.Contains(help[i:i+200], "capacity.svg") || strings.Contains(help[i:i+200], "Vegeta") {
		t.Errorf("capacity --output help: %q", help[i:min(len(help), i+200)])
	}
	for _, cmd := range []string{"mint", "clean", "attack", "capacity", "report", "compare"} {
		code, _, h := runCLI(t, cmd, "--help")
		if code != exitOK || !strings.HasPrefix(h, "Usage: loadgen "+cmd) {
			t.Errorf("%s --help: exit %d:\n%s", cmd, code, h)
		}
		for _, leak := range []string{"stringToString", "stringArray", "[=true|false]"} {
			if strings.Contains(h, leak) {
				t.Errorf("%s --help shows the pflag type %s", cmd, leak)
			}
		}
	}
}

// mint finds the admin API as jwtgate keys does ($JWTGATE_ADMIN_URL,
// $JWTGATE_ADMIN_TOKEN_FILE, ./jwtgate-data/admin-token), and checks for a
// token before generating any key.
func TestCLIMintAdminEnvironment(t *testing.T) {
	srv := startJWTGate(t)
	dir := t.TempDir()
	t.Chdir(dir)
	for _, k := range []string{"JWTGATE_ADMIN_URL", "JWTGATE_ADMIN_TOKEN", "JWTGATE_ADMIN_TOKEN_FILE"} {
		t.Setenv(k, "")
		os.Unsetenv(k)
	}
	args := []string{"mint", "--project", "envtest", "--count", "10", "--mix", "valid=1", "--keys", "1",
		"--url", "http://" + srv.Addr() + "/v1/verify", "-o", filepath.Join(dir, "t.jsonl")}

	// No token anywhere: a usage error, and no key was generated.
	t.Setenv("JWTGATE_ADMIN_URL", "http://"+srv.AdminAddr())
	code, _, errs := runCLI(t, args...)
	if code != exitUsage || !strings.Contains(errs, "no admin token") || strings.Contains(errs, "generating") {
		t.Fatalf("no token: exit %d, %q (want exit 2 before generating keys)", code, errs)
	}

	// $JWTGATE_ADMIN_TOKEN_FILE and $JWTGATE_ADMIN_URL.
	tokFile := filepath.Join(dir, "tok")
	os.WriteFile(tokFile, []byte(adminToken+"\n"), 0o600)
	t.Setenv("JWTGATE_ADMIN_TOKEN_FILE", tokFile)
	if code, out, errs := runCLI(t, args...); code != exitOK {
		t.Fatalf("with JWTGATE_ADMIN_URL/JWTGATE_ADMIN_TOKEN_FILE: exit %d\n%s\n%s", code, out, errs)
	}

	// ./jwtgate-data/admin-token, as jwtgate serve writes it by default.
	os.Unsetenv("JWTGATE_ADMIN_TOKEN_FILE")
	os.MkdirAll("jwtgate-data", 0o700)
	os.WriteFile(filepath.Join("jwtgate-data", "admin-token"), []byte(adminToken+"\n"), 0o600)
	if code, out, errs := runCLI(t, args...); code != exitOK {
		t.Fatalf("with ./jwtgate-data/admin-token: exit %d\n%s\n%s", code, out, errs)
	}
	r := apitest.AdminDo(t, "http://"+srv.AdminAddr(), adminToken, "GET", "/v1/projects/envtest/keys", nil)
	if n := len(r.JSON(t)["keys"].([]any)); n != 2 {
		t.Errorf("%d keys registered by two runs, want 2", n)
	}
}

// --kid names the kid of each --key-file, so --no-register runs make
// valid tokens; clean deletes the lg-* keys a run registered, and only
// those.
func TestCLIMintKIDAndClean(t *testing.T) {
	srv := startJWTGate(t)
	admin := "http://" + srv.AdminAddr()
	keyFile := enginetest.Testdata("keys", "rsa2048-a.pem")
	r := apitest.AdminDo(t, admin, adminToken, "POST", "/v1/projects/myapp/keys",
		map[string]any{"public_key": string(enginetest.PublicPEM(&enginetest.Key("rsa2048-a").PublicKey)), "kid": "mine-1"})
	if r.Status != 201 {
		t.Fatalf("register: %d %s", r.Status, r.Body)
	}
	dir := t.TempDir()
	own := filepath.Join(dir, "own.jsonl")
	code, out, errs := runCLI(t, "mint", "--project", "myapp", "--count", "40", "--mix", "valid=9,expired=1",
		"--key-file", keyFile, "--kid", "mine-1", "--no-register", "--url", "http://"+srv.Addr()+"/v1/verify", "-o", own)
	if code != 0 {
		t.Fatalf("mint --no-register --kid: %d\n%s\n%s", code, out, errs)
	}
	code, out, errs = runCLI(t, "attack", "-t", own, "--rate", "200/s", "--duration", "300ms", "--connections", "2")
	if code != 0 || !strings.Contains(out, "every verdict as expected") {
		t.Fatalf("attack with --kid tokens: exit %d\n%s\n%s", code, out, errs)
	}
	if code, _, errs := runCLI(t, "mint", "-o", own, "--key-file", keyFile, "--kid", "a", "--kid", "b", "--no-register"); code != exitUsage || !strings.Contains(errs, "one --kid per --key-file") {
		t.Errorf("two --kid for one --key-file: exit %d %q", code, errs)
	}

	gen := filepath.Join(dir, "gen.jsonl")
	if code, out, errs := runCLI(t, "mint", "--project", "myapp", "--count", "10", "--mix", "valid=9,key_inactive=1", "--keys", "1",
		"--key-file", keyFile, "--admin-url", admin, "--admin-token", adminToken, "--url", "http://"+srv.Addr()+"/v1/verify", "-o", gen); code != 0 {
		t.Fatalf("mint: %d\n%s\n%s", code, out, errs)
	}
	kids := func() []string {
		var out []string
		for _, k := range apitest.AdminDo(t, admin, adminToken, "GET", "/v1/projects/myapp/keys", nil).JSON(t)["keys"].([]any) {
			out = append(out, k.(map[string]any)["kid"].(string))
		}
		return out
	}
	if n := len(kids()); n != 3 { // mine-1, the run's key, its inactive key
		t.Fatalf("keys before clean: %v", kids())
	}
	// The run's key verifies tokens, so the rotation guardrail would
	// refuse a plain DELETE for the next max TTL: clean still deletes it.
	if code, out, errs := runCLI(t, "attack", "-t", gen, "--rate", "200/s", "--duration", "300ms", "--connections", "2"); code != 0 {
		t.Fatalf("attack: %d\n%s\n%s", code, out, errs)
	}
	time.Sleep(1500 * time.Millisecond) // the server's usage flush (1 s)
	code, out, errs = runCLI(t, "clean", "-t", gen, "--admin-url", admin, "--admin-token", adminToken)
	if code != 0 || !strings.Contains(out, "deleted 2 keys") {
		t.Fatalf("clean: exit %d\n%s\n%s", code, out, errs)
	}
	if got := kids(); len(got) != 1 || got[0] != "mine-1" {
		t.Errorf("keys after clean: %v, want only mine-1", got)
	}
	// Again: nothing left to delete is not an error.
	if code, _, errs := runCLI(t, "clean", "-t", gen, "--admin-url", admin, "--admin-token", adminToken); code != 0 {
		t.Errorf("second clean: exit %d %s", code, errs)
	}
}
