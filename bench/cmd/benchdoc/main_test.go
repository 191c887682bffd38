package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

const sample = `commit: abc123
goos: linux
goarch: amd64
pkg: github.com/jwtgate/jwtgate/bench
cpu: AMD EPYC
BenchmarkPeers/lib=rsa/bits=2048-2         	   40000	     30000 ns/op	    1376 B/op	       9 allocs/op
BenchmarkPeers/lib=rsa/bits=2048-2         	   40000	     32000 ns/op	    1376 B/op	       9 allocs/op
BenchmarkPeers/lib=rsa/bits=2048-2         	   40000	     90000 ns/op	    1376 B/op	       9 allocs/op
BenchmarkPeers/lib=jwtgate/bits=2048-2     	   40000	     25000 ns/op	      32 B/op	       1 allocs/op
BenchmarkPeers/lib=jwtgate-cached/bits=2048-2 	 1000000	       500 ns/op	       0 B/op	       0 allocs/op
BenchmarkPeers/lib=golang-jwt/bits=2048-2  	   30000	     40000 ns/op	    4720 B/op	      65 allocs/op
BenchmarkPeers/lib=jwx/bits=2048-2  	   30000	     60000 ns/op	    4720 B/op	      65 allocs/op
BenchmarkPeers/lib=go-jose/bits=2048-2  	   30000	     50000 ns/op	    4720 B/op	      65 allocs/op
BenchmarkKeys/registered=100000-2     	    2000	     29030 ns/op	         1.961 heap-MB	       128.0 keys-cached	         0.97 rel-throughput	    2893 B/op	      20 allocs/op
BenchmarkVerify/bits=2048/path=cold/mode=serial-2 	 1000	 30000 ns/op	 0 B/op	 0 allocs/op
BenchmarkVerify/bits=2048/path=cold/mode=parallel-2 	 1000	 15000 ns/op	 0 B/op	 0 allocs/op
--- FAIL: something
PASS
ok  	github.com/jwtgate/jwtgate/bench	1.2s
`

func TestParse(t *testing.T) {
	r, err := Parse(strings.NewReader(sample))
	if err != nil {
		t.Fatal(err)
	}
	if got := r.Config["cpu"]; got != "AMD EPYC" {
		t.Errorf("cpu = %q", got)
	}
	if got := r.Config["commit"]; got != "abc123" {
		t.Errorf("commit = %q", got)
	}
	if m, ok := r.Median("BenchmarkPeers/lib=rsa/bits=2048", "ns/op"); !ok || m != 32000 {
		t.Errorf("median = %v %v, want 32000 (odd count, outlier ignored)", m, ok)
	}
	if m, ok := r.Median("BenchmarkKeys/registered=100000", "rel-throughput"); !ok || m != 0.97 {
		t.Errorf("custom metric = %v %v", m, ok)
	}
	if r.Count("BenchmarkPeers/lib=rsa/bits=2048") != 3 {
		t.Errorf("count = %d", r.Count("BenchmarkPeers/lib=rsa/bits=2048"))
	}
	if _, ok := r.Median("BenchmarkPeers/lib=jwx/bits=4096", "ns/op"); ok {
		t.Error("median of a missing benchmark")
	}
	if len(r.Order) != 9 {
		t.Errorf("names = %v", r.Order)
	}
}

func TestMedianEven(t *testing.T) {
	r := &Results{Samples: map[string]map[string][]float64{"B": {"ns/op": {4, 1, 3, 2}}}}
	if m, _ := r.Median("B", "ns/op"); m != 2.5 {
		t.Errorf("median = %v, want 2.5", m)
	}
}

func TestParseOpenSSL(t *testing.T) {
	out := "OpenSSL 3.0.19 27 Jan 2026 (Library: OpenSSL 3.0.19 27 Jan 2026)\n" +
		"                  sign    verify    sign/s verify/s\n" +
		"rsa 2048 bits 0.000244s 0.000015s   4096.0  68310.8\n"
	o, ok := ParseOpenSSL(strings.NewReader(out))
	if !ok || o.VerifyS != 68310.8 || o.SignS != 4096 || o.Version != "3.0.19" {
		t.Fatalf("got %+v %v", o, ok)
	}
	o, ok = ParseOpenSSL(strings.NewReader("version: 3.0.19\nbuilt on: x\n" + out[strings.Index(out, "\n")+1:]))
	if !ok || o.Version != "3.0.19" {
		t.Fatalf("OpenSSL 3 speed header: got %+v %v", o, ok)
	}
	if _, ok := ParseOpenSSL(strings.NewReader("garbage\n")); ok {
		t.Error("parsed garbage")
	}
}

func TestGenerate(t *testing.T) {
	dir := t.TempDir()
	res := filepath.Join(dir, "r.txt")
	doc := filepath.Join(dir, "doc.md")
	if err := os.WriteFile(res, []byte(sample), 0o644); err != nil {
		t.Fatal(err)
	}
	before := "# x\nkeep me\n" + beginMarker + "\nold table\n" + endMarker + "\nafter\n"
	if err := os.WriteFile(doc, []byte(before), 0o644); err != nil {
		t.Fatal(err)
	}
	var stdout, stderr bytes.Buffer
	if code := run([]string{"--results", res, "--doc", doc, "--img", filepath.Join(dir, "img")}, &stdout, &stderr); code != 0 {
		t.Fatalf("exit %d: %s", code, stderr.String())
	}
	got, _ := os.ReadFile(doc)
	s := string(got)
	for _, want := range []string{"keep me", "after", "| **jwtgate** cold (token cache off) | 25.00 µs | 1 |", "| cold verify ≥ 0.95× raw RSA (2048) | 1.07× | yes |", "| cached: ≥ 5× every peer | closest golang-jwt: 80.0× | yes |", "| cold: ahead of every peer | closest golang-jwt: 1.60× | yes |"} {
		if !strings.Contains(s, want) {
			t.Errorf("doc lacks %q:\n%s", want, s)
		}
	}
	if strings.Contains(s, "old table") {
		t.Error("old block kept")
	}
	svg, err := os.ReadFile(filepath.Join(dir, "img", "bench-peers.svg"))
	if err != nil || !bytes.HasPrefix(svg, []byte("<svg")) || !bytes.Contains(svg, []byte("golang-jwt")) {
		t.Errorf("peers chart: %v %q", err, svg)
	}
	// A doc without markers is an error, and is left alone.
	if err := os.WriteFile(doc, []byte("no markers\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if code := run([]string{"--results", res, "--doc", doc, "--img", ""}, &stdout, &stderr); code != 1 {
		t.Errorf("exit %d without markers", code)
	}
	if got, _ := os.ReadFile(doc); string(got) != "no markers\n" {
		t.Errorf("doc changed: %q", got)
	}
}

// The OpenSSL and crypto/rsa ratios pair rounds by index and use CPU time
// (cpu-ns/op) where the benchmark reports it, as openssl speed does.
func TestRoundRatiosUseCPUTime(t *testing.T) {
	in := `cpu-id: GenuineIntel family 6 model 167 stepping 1
BenchmarkPeers/lib=rsa/bits=2048-2 10 90000 ns/op 30000 cpu-ns/op
BenchmarkPeers/lib=jwtgate/bits=2048-2 10 80000 ns/op 20000 cpu-ns/op
BenchmarkPeers/lib=openssl/bits=2048 1 10000 ns/op
BenchmarkPeers/lib=rsa/bits=2048-2 10 90000 ns/op 20000 cpu-ns/op
BenchmarkPeers/lib=jwtgate/bits=2048-2 10 80000 ns/op 10000 cpu-ns/op
BenchmarkPeers/lib=openssl/bits=2048 1 15000 ns/op
`
	res, err := Parse(strings.NewReader(in))
	if err != nil {
		t.Fatal(err)
	}
	got := (&report{res: res}).roundRatios()
	// crypto/rsa: 30/20, 20/10 -> 1.75; OpenSSL: 10/20, 15/10 -> 1.00
	for _, want := range []string{"crypto/rsa alone **1.75×** (1.50–2.00×, 2 rounds)", "verify **1.00×** (0.50–1.50×, 2 rounds)"} {
		if !strings.Contains(got, want) {
			t.Errorf("roundRatios lacks %q:\n%s", want, got)
		}
	}
}
