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
	if last := lines[len(lines)-1]; last != "capacity: 200 req/s at p99 <= 2s" {
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
		{nil, exitUsage, "usage"},
		{[]string{"bogus"}, exitUsage, "unknown command"},
		{[]string{"help"}, exitOK, ""},
		{[]string{"attack", "--help"}, exitOK, "--rate"},
		{[]string{"attack"}, exitUsage, "--targets is required"},
		{[]string{"attack", "-t", remote, "--duration", "1s"}, exitUsage, "--allow-remote"},
		{[]string{"attack", "-t", remote, "--duration", "2h"}, exitUsage, "--duration"},
		{[]string{"attack", "-t", remote, "--rate", "fast"}, exitUsage, "rate"},
		{[]string{"capacity", "-t", remote, "--slo", "p99"}, exitUsage, "SLO"},
		{[]string{"mint", "--count", "1"}, exitUsage, "--output is required"},
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
