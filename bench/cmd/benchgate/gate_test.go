package main

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// bench is one synthetic benchmark: ns/op values (one per run) and a
// constant allocs/op.
type bench struct {
	name   string
	ns     []float64
	allocs int
	cpu    []float64 // cpu-ns/op, when reported
}

// around returns n values spread evenly over center×(1±spread), ascending
// (as under a load that grows over the run).
func around(center, spread float64, n int) []float64 {
	v := make([]float64, n)
	for i := range n {
		v[i] = center * (1 + spread*(-1+2*float64(i)/float64(n-1)))
	}
	return v
}

// rev returns v reversed: as head runs, its noise does not follow the
// base's round by round (the per-round ratios vary).
func rev(v []float64) []float64 {
	r := make([]float64, len(v))
	for i := range v {
		r[len(v)-1-i] = v[i]
	}
	return r
}

// scale returns v×f: the same rounds, each slower by f (load that lasts
// longer than a round hits both sides alike).
func scale(v []float64, f float64) []float64 {
	r := make([]float64, len(v))
	for i := range v {
		r[i] = v[i] * f
	}
	return r
}

// resultFile writes benchmarks in the Go benchmark format, one line per run,
// the runs interleaved as `make bench-gate` writes them.
func resultFile(t *testing.T, commit string, bs ...bench) string {
	t.Helper()
	var b strings.Builder
	fmt.Fprintf(&b, "commit: %s\ngoos: linux\ngoarch: amd64\npkg: github.com/jwtgate/jwtgate/bench\ncpu: Test CPU @ 1GHz\n", commit)
	for run := 0; ; run++ {
		wrote := false
		for _, bm := range bs {
			if run < len(bm.ns) {
				cpu := ""
				if bm.cpu != nil {
					cpu = fmt.Sprintf("\t %.1f cpu-ns/op", bm.cpu[run])
				}
				fmt.Fprintf(&b, "Benchmark%s-2 \t 100000\t %.1f ns/op%s\t %d B/op\t %d allocs/op\n", bm.name, bm.ns[run], cpu, 48*bm.allocs, bm.allocs)
				wrote = true
			}
		}
		if !wrote {
			break
		}
	}
	b.WriteString("PASS\nok  \tgithub.com/jwtgate/jwtgate/bench\t12.3s\n")
	p := filepath.Join(t.TempDir(), commit+".txt")
	if err := os.WriteFile(p, []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func compareT(t *testing.T, base, head string) *Report {
	t.Helper()
	rep, err := compareFiles(base, head, DefaultOptions)
	if err != nil {
		t.Fatal(err)
	}
	return rep
}

func verdictOf(t *testing.T, rep *Report, name string) Row {
	t.Helper()
	for _, r := range rep.Rows {
		if r.Name == name+"-2" {
			return r
		}
	}
	t.Fatalf("no row %q in %+v", name, rep.Rows)
	return Row{}
}

const cold = "Verify/bits=2048/path=cold/mode=serial"

func TestVerdicts(t *testing.T) {
	for _, tc := range []struct {
		name       string
		base, head bench
		want       Verdict
		why        string // a substring of the reason
	}{
		{"clear regression", bench{cold, around(30000, 0.01, 6), 0, nil}, bench{cold, around(33000, 0.01, 6), 0, nil}, Regression, "time/op +10.0%"},
		{"clear pass", bench{cold, around(30000, 0.01, 6), 0, nil}, bench{cold, around(30100, 0.01, 6), 0, nil}, Pass, ""},
		{"significant but under the threshold", bench{cold, around(30000, 0.005, 6), 0, nil}, bench{cold, around(31000, 0.005, 6), 0, nil}, Pass, ""},
		{"improvement", bench{cold, around(30000, 0.01, 6), 0, nil}, bench{cold, around(25000, 0.01, 6), 0, nil}, Improved, "time/op -16.7%"},
		{"alloc increase", bench{cold, around(30000, 0.01, 6), 0, nil}, bench{cold, around(30000, 0.01, 6), 1, nil}, Regression, "allocs/op 0 → 1"},
		{"alloc decrease", bench{cold, around(30000, 0.01, 6), 2, nil}, bench{cold, around(30000, 0.01, 6), 1, nil}, Improved, "allocs/op 2 → 1"},
		{"wide spread", bench{cold, around(30000, 0.2, 6), 0, nil}, bench{cold, rev(around(31000, 0.2, 6)), 0, nil}, Inconclusive, "spread ±"},
		{"wide spread, significant slowdown, intervals overlap", bench{cold, around(30000, 0.1, 6), 0, nil}, bench{cold, rev(around(36000, 0.1, 6)), 0, nil}, Inconclusive, "wider than the threshold"},
		{"wide spread, intervals far apart", bench{cold, around(30000, 0.08, 6), 0, nil}, bench{cold, rev(around(45000, 0.08, 6)), 0, nil}, Regression, "time/op +50.1%"},
		{"wide spread that the pairs cancel", bench{cold, around(30000, 0.2, 6), 0, nil}, bench{cold, scale(around(30000, 0.2, 6), 1.01), 0, nil}, Pass, ""},
		{"paired slowdown, not significant", bench{cold, around(30000, 0.2, 6), 0, nil}, bench{cold, scale(around(30000, 0.2, 6), 1.1), 0, nil}, Inconclusive, "not significant"},
		{"unpaired (different run counts), wide", bench{cold, around(30000, 0.2, 6), 0, nil}, bench{cold, around(30000, 0.2, 8), 0, nil}, Inconclusive, "spread ±"},
		{"too few runs for an interval", bench{cold, around(30000, 0.01, 3), 0, nil}, bench{cold, around(30000, 0.01, 3), 0, nil}, Inconclusive, "spread ±∞ (too few runs)"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rep := compareT(t, resultFile(t, "base", tc.base), resultFile(t, "head", tc.head))
			row := verdictOf(t, rep, cold)
			if row.Verdict != tc.want || !strings.Contains(row.Why, tc.why) {
				t.Errorf("verdict %v (%s), want %v (%q); time %+v", row.Verdict, row.Why, tc.want, tc.why, row.Time)
			}
			if got, want := rep.Failed(), tc.want == Regression; got != want {
				t.Errorf("Failed() = %v, want %v", got, want)
			}
		})
	}
}

// TestCPUTimeDecides: where benchmarks report cpu-ns/op, the CPU time
// decides and the wall time (noisy on a shared machine) is only shown.
func TestCPUTimeDecides(t *testing.T) {
	wall := around(40000, 0.5, 6)
	for _, tc := range []struct {
		name string
		head []float64
		want Verdict
		why  string
	}{
		{"same CPU time, wild wall time", around(20100, 0.01, 6), Pass, ""},
		{"CPU time +10%", around(22000, 0.01, 6), Regression, "CPU time/op +10.0%"},
		{"CPU time spread wide", rev(around(20000, 0.3, 6)), Inconclusive, "CPU time/op spread"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rep := compareT(t, resultFile(t, "base", bench{cold, wall, 0, around(20000, 0.01, 6)}),
				resultFile(t, "head", bench{cold, rev(wall), 0, tc.head}))
			row := verdictOf(t, rep, cold)
			if row.Verdict != tc.want || !strings.Contains(row.Why, tc.why) || row.Time.Unit != unitCPU {
				t.Errorf("verdict %v (%s) on %s, want %v (%q) on %s", row.Verdict, row.Why, row.Time.Unit, tc.want, tc.why, unitCPU)
			}
			if row.Wall == nil || row.Wall.Spread < 0.5 {
				t.Errorf("wall time %+v, want shown with its wide spread", row.Wall)
			}
		})
	}
}

// TestExitStatus runs the command: 1 on a regression, 0 on a pass and on
// inconclusive (1 with --strict), 2 on usage errors.
func TestExitStatus(t *testing.T) {
	base := resultFile(t, "base", bench{cold, around(30000, 0.01, 6), 0, nil}, bench{"Verify/bits=2048/path=cached/mode=serial", rev(around(80, 0.2, 6)), 0, nil})
	same := resultFile(t, "same", bench{cold, around(30050, 0.01, 6), 0, nil}, bench{"Verify/bits=2048/path=cached/mode=serial", around(80, 0.01, 6), 0, nil})
	slow := resultFile(t, "slow", bench{cold, around(33000, 0.01, 6), 0, nil}, bench{"Verify/bits=2048/path=cached/mode=serial", around(80, 0.01, 6), 0, nil})
	allocs := resultFile(t, "allocs", bench{cold, around(30000, 0.01, 6), 1, nil}, bench{"Verify/bits=2048/path=cached/mode=serial", around(80, 0.01, 6), 0, nil})
	for _, tc := range []struct {
		args []string
		want int
		out  string
	}{
		{[]string{base, same}, 0, "benchgate: INCONCLUSIVE: 1 inconclusive, 1 of 2 unchanged"},
		{[]string{"--strict", base, same}, 1, "INCONCLUSIVE"},
		{[]string{base, slow}, 1, "benchgate: FAIL: 1 regression, 1 inconclusive, 0 of 2 unchanged"},
		{[]string{"--threshold", "15%", base, slow}, 0, "1 of 2 unchanged"},
		{[]string{base, allocs}, 1, "allocs/op 0 → 1"},
		{[]string{same, same}, 0, "benchgate: PASS: 2 of 2 unchanged"},
		{[]string{base}, 2, "want two result files"},
		{[]string{"--threshold", "-3%", base, same}, 2, `--threshold "-3%"`},
		{[]string{"--alpha", "2", base, same}, 2, "--alpha 2"},
		{[]string{base, filepath.Join(t.TempDir(), "missing.txt")}, 2, "missing.txt"},
		{[]string{"--nope", base, same}, 2, "unknown flag: --nope"},
	} {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			var out, errOut bytes.Buffer
			if got := run(tc.args, &out, &errOut); got != tc.want {
				t.Errorf("exit %d, want %d\nstdout:\n%s\nstderr:\n%s", got, tc.want, out.String(), errOut.String())
			}
			if !strings.Contains(out.String()+errOut.String(), tc.out) {
				t.Errorf("output lacks %q:\n%s%s", tc.out, out.String(), errOut.String())
			}
		})
	}
}

func TestEmptyFile(t *testing.T) {
	p := filepath.Join(t.TempDir(), "empty.txt")
	os.WriteFile(p, []byte("PASS\n"), 0o644)
	var out, errOut bytes.Buffer
	if got := run([]string{p, p}, &out, &errOut); got != 2 || !strings.Contains(errOut.String(), "no benchmark results") {
		t.Errorf("exit %d, stderr %q; want 2 and 'no benchmark results'", got, errOut.String())
	}
}

// TestRerunPattern: the pattern selects the inconclusive benchmarks (by the
// levels `go test -bench` matches) and not the decided ones.
func TestRerunPattern(t *testing.T) {
	names := []string{
		"Verify/bits=2048/path=cold/mode=serial",
		"Verify/bits=2048/path=cold/mode=parallel",
		"Verify/bits=2048/path=cached/mode=serial",
		"Reject/code=expired/mode=serial",
	}
	var bb, hb []bench
	for i, n := range names {
		spread := 0.01
		if i == 1 || i == 3 { // inconclusive: parallel cold and expired
			spread = 0.3
		}
		bb = append(bb, bench{n, around(1000, spread, 6), 0, nil})
		hb = append(hb, bench{n, rev(around(1000, spread, 6)), 0, nil})
	}
	dir := t.TempDir()
	rerun := filepath.Join(dir, "rerun")
	var out, errOut bytes.Buffer
	if code := run([]string{"--rerun", rerun, resultFile(t, "base", bb...), resultFile(t, "head", hb...)}, &out, &errOut); code != 0 {
		t.Fatalf("exit %d: %s", code, errOut.String())
	}
	p, _ := os.ReadFile(rerun)
	pattern := strings.TrimSpace(string(p))
	want := `^(BenchmarkVerify|BenchmarkReject)$/^(bits=2048|code=expired)$/^(path=cold|mode=serial)$/^(mode=parallel)$`
	if pattern != want {
		t.Fatalf("pattern %q, want %q", pattern, want)
	}
	// Match the pattern as `go test -bench` does: level by level.
	matches := func(name string) bool {
		levels := nameLevels(name)
		pats := strings.Split(pattern, "/")
		for i, l := range levels {
			if i < len(pats) && !regexp.MustCompile(pats[i]).MatchString(l) {
				return false
			}
		}
		return true
	}
	for i, n := range names {
		if got, want := matches(n+"-2"), i == 1 || i == 3; got != want {
			t.Errorf("pattern matches %s = %v, want %v", n, got, want)
		}
	}
	// Nothing inconclusive: an empty file.
	same := resultFile(t, "same", bench{cold, around(1000, 0.01, 6), 0, nil})
	if code := run([]string{"--rerun", rerun, same, same}, &out, &errOut); code != 0 {
		t.Fatal(code)
	}
	if p, _ := os.ReadFile(rerun); len(p) != 0 {
		t.Errorf("rerun file %q, want empty", p)
	}
}

// TestMarkdown: the summary leads with the outcome and lists regressions
// first, then inconclusive, then the rest.
func TestMarkdown(t *testing.T) {
	base := resultFile(t, "abc123",
		bench{"Verify/bits=2048/path=cached/mode=serial", around(80, 0.01, 6), 0, nil},
		bench{"Verify/bits=2048/path=cached-many/mode=serial", around(90, 0.3, 6), 0, nil},
		bench{cold, around(30000, 0.01, 6), 0, nil})
	head := resultFile(t, "def456",
		bench{"Verify/bits=2048/path=cached/mode=serial", around(80, 0.01, 6), 0, nil},
		bench{"Verify/bits=2048/path=cached-many/mode=serial", rev(around(90, 0.3, 6)), 0, nil},
		bench{cold, around(33000, 0.01, 6), 0, nil},
		bench{"Verify/bits=4096/path=cold/mode=serial", around(80000, 0.01, 6), 0, nil})
	md := filepath.Join(t.TempDir(), "compare.md")
	var out, errOut bytes.Buffer
	if code := run([]string{"--markdown", md, "--reruns", "2", base, head}, &out, &errOut); code != 1 {
		t.Fatalf("exit %d, want 1: %s%s", code, out.String(), errOut.String())
	}
	b, err := os.ReadFile(md)
	if err != nil {
		t.Fatal(err)
	}
	s := string(b)
	for _, want := range []string{
		"## Benchmark gate: FAIL: 1 regression, 1 inconclusive, 1 of 3 unchanged\n",
		"over 5% that is significant (Mann-Whitney U, p < 0.05)",
		"(2 reruns here)",
		"base `abc123`, head `def456`; cpu: Test CPU @ 1GHz; base and head run alternately, 6 runs each",
		"| ❌ regression | `Verify/bits=2048/path=cold/mode=serial-2` | 30µs ±1% | 33µs ±1% | +10.0% ±0.0% | 0.002 |  | 0 | 0 |",
		"`Verify/bits=4096/path=cold/mode=serial-2` is only in the head results (new).",
	} {
		if !strings.Contains(s, want) {
			t.Errorf("markdown lacks %q:\n%s", want, s)
		}
	}
	reg := strings.Index(s, "❌ regression")
	inc := strings.Index(s, "❔ inconclusive")
	pass := strings.Index(s, "✅ pass")
	if !(reg >= 0 && reg < inc && inc < pass) {
		t.Errorf("order: regression at %d, inconclusive at %d, pass at %d; want increasing:\n%s", reg, inc, pass, s)
	}
}
