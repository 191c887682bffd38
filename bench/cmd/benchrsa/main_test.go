package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

const sample = `date: 2026-12-01T00:00:00Z
cpu-id: AuthenticAMD family 25 model 1 stepping 1
cpu-name: AMD EPYC 7B13
cpu-flags: bmi2 adx
go: go version go1.26.8 linux/amd64
openssl: OpenSSL 3.0.19
BenchmarkVerify/bits=2048/impl=ours-2   100  90000 ns/op  20000 cpu-ns/op  0 B/op  0 allocs/op
BenchmarkVerify/bits=2048/impl=stdlib-2 100  30000 ns/op
BenchmarkVerify/bits=2048/impl=portable-2 100  40000 ns/op
BenchmarkVerify/bits=2048/impl=engine-cold-2 100  40000 ns/op  20000 cpu-ns/op
BenchmarkVerify/bits=2048/impl=openssl 1 10000 ns/op
BenchmarkVerify/bits=2048/impl=openssl 1 30000 ns/op
BenchmarkVerify/bits=2048/impl=engine-cold-2 100  40000 ns/op  15000 cpu-ns/op
BenchmarkVerify/bits=2048/impl=ours-2   100  50000 ns/op  10000 cpu-ns/op
BenchmarkVerify/bits=2048/impl=stdlib-2 100  20000 ns/op
BenchmarkVerify/bits=2048/impl=portable-2 100  10000 ns/op
`

func TestMarkdownPairsRounds(t *testing.T) {
	md := parse([]byte(sample)).markdown([]int{2048}, "x.txt")
	for _, want := range []string{
		"CPU: AuthenticAMD family 25 model 1 stepping 1 (AMD EPYC 7B13), flags: bmi2 adx",
		"2 alternating rounds",
		// crypto/rsa: 30/20 = 1.5 and 20/10 = 2 -> 1.75; portable: 30/40, 20/10 -> 1.375
		// engine: 10/20 and 30/15 -> 1.25 (0.50-2.00) vs OpenSSL
		"its speed ÷ OpenSSL's verify: **1.25×** (0.50–2.00)",
		"| 2048 | 15.0 µs | 25.0 µs | — | 25.0 µs | 20.0 µs | **1.75×** (1.50–2.00) | **1.75×** (0.50–3.00) | — | **1.38×** (0.75–2.00) |",
	} {
		if !strings.Contains(md, want) {
			t.Errorf("markdown lacks %q:\n%s", want, md)
		}
	}
}

func TestOpenSSLVerify(t *testing.T) {
	out := []byte("version: 3.0.19\n                  sign    verify    sign/s verify/s\nrsa 2048 bits 0.000264s 0.000014s   3785.0  70660.0\n")
	v, ok := opensslVerify(out)
	if !ok || v != 70660 {
		t.Fatalf("opensslVerify = %v, %v; want 70660, true", v, ok)
	}
	if _, ok := opensslVerify([]byte("rsa 4096 bits 0.1s 0.1s 1 2\n")); ok {
		t.Error("opensslVerify accepted output without a 2048-bit line")
	}
}

func TestRenderAndRewrite(t *testing.T) {
	dir := t.TempDir()
	res := filepath.Join(dir, "r.txt")
	doc := filepath.Join(dir, "doc.md")
	os.WriteFile(res, []byte(sample), 0o644)
	beginMarker, endMarker := markers("rsa")
	os.WriteFile(doc, []byte("a\n"+beginMarker+"\nSTALE-BLOCK\n"+endMarker+"\nb\n"), 0o644)
	var out, errb bytes.Buffer
	if code := run([]string{"--results", res, "--bits", "2048", "--doc", doc}, &out, &errb); code != 0 {
		t.Fatalf("exit %d: %s", code, errb.String())
	}
	got, _ := os.ReadFile(doc)
	if strings.Contains(string(got), "STALE-BLOCK") || !strings.Contains(string(got), "**1.75×**") || !strings.HasSuffix(string(got), endMarker+"\nb\n") {
		t.Errorf("doc not rewritten in place:\n%s", got)
	}
	os.WriteFile(doc, []byte("no markers\n"), 0o644)
	errb.Reset()
	if code := run([]string{"--results", res, "--bits", "2048", "--doc", doc}, &out, &errb); code != 1 || !strings.Contains(errb.String(), beginMarker) {
		t.Errorf("doc without markers: exit %d, stderr %q", code, errb.String())
	}
}

func TestUsageErrors(t *testing.T) {
	for _, args := range [][]string{{"--rounds", "0"}, {"--bits", "1024"}, {"--impl", "fast"}} {
		var out, errb bytes.Buffer
		if code := run(args, &out, &errb); code != 2 || !strings.Contains(errb.String(), args[0]) {
			t.Errorf("%v: exit %d, stderr %q; want 2 naming the flag", args, code, errb.String())
		}
	}
}

func TestMarkdownEmulated(t *testing.T) {
	md := parse([]byte("emulation: GOARCH=arm64 under qemu-aarch64-static\n"+sample)).markdown([]int{2048}, "x.txt")
	for _, want := range []string{"`make bench-rsa-arm64`", "**Emulated**: GOARCH=arm64 under qemu-aarch64-static"} {
		if !strings.Contains(md, want) {
			t.Errorf("markdown lacks %q:\n%s", want, md)
		}
	}
}

func TestMissingOpenSSLSaysWhatToDo(t *testing.T) {
	var out, errb bytes.Buffer
	code := run([]string{"--rounds", "1", "--bits", "2048", "--impl", "ours", "--engine=false",
		"--benchtime", "1x", "--openssl", "/nonexistent/openssl"}, &out, &errb)
	if code != 1 || !strings.Contains(errb.String(), "--openssl-seconds 0") {
		t.Errorf("exit %d, stderr %q; want 1 and how to skip OpenSSL", code, errb.String())
	}
}
