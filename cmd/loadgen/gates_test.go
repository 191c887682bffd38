package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/jwtgate/jwtgate/loadgen"
)

// TestMain lets a test run this package's main as a separate process (a
// generator of its own): with LOADGEN_TEST_MAIN=1 the test binary is
// loadgen.
func TestMain(m *testing.M) {
	if os.Getenv("LOADGEN_TEST_MAIN") == "1" {
		os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
	}
	os.Exit(m.Run())
}

func readReport(t *testing.T, path string) *loadgen.Report {
	t.Helper()
	r, err := loadgen.ReadSummary(path)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func TestCLIAttackSLOGate(t *testing.T) {
	srv := startJWTGate(t)
	file := mint(t, srv, 200)
	dir := t.TempDir()
	for _, tc := range []struct {
		name  string
		slos  []string
		code  int
		gates int
		want  []string
	}{
		{"met", []string{"--slo", "p99=5s", "--slo", "p50=4s,p99.9=5s"}, exitOK, 4,
			[]string{"gate        p99 <= 5s", "gate        p99.9 <= 5s", "result      PASS: every gate passed", "quantiles   p50 "}},
		{"missed", []string{"--slo", "p99=5s", "--slo", "p50=1ns"}, exitMismatch, 3,
			[]string{"gate        p50 <= 1ns", "FAIL\n", "result      FAIL: a gate failed"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			sum := filepath.Join(dir, tc.name+".json")
			args := append([]string{"attack", "-t", file, "--rate", "100/s", "--duration", "1s", "--connections", "4", "--summary", sum}, tc.slos...)
			code, out, errs := runCLI(t, args...)
			if code != tc.code {
				t.Fatalf("exit %d, want %d\n%s\n%s", code, tc.code, out, errs)
			}
			for _, w := range tc.want {
				if !strings.Contains(out, w) {
					t.Errorf("output lacks %q:\n%s", w, out)
				}
			}
			r := readReport(t, sum)
			if r.Pass != (tc.code == exitOK) || len(r.Gates) != tc.gates || r.Quantiles["p99"] <= 0 || r.Requests < 50 {
				t.Errorf("summary pass=%v gates=%+v quantiles=%v requests=%d", r.Pass, r.Gates, r.Quantiles, r.Requests)
			}
		})
	}
	// compare the two summaries: the p50 gate newly fails.
	code, out, errs := runCLI(t, "compare", filepath.Join(dir, "met.json"), filepath.Join(dir, "missed.json"), "--threshold", "500%")
	if code != exitMismatch || !strings.Contains(out, "gate p50 <= 1ns") || !strings.Contains(out, "compare: REGRESSION") {
		t.Errorf("compare met missed: exit %d\n%s\n%s", code, out, errs)
	}
	code, out, errs = runCLI(t, "compare", filepath.Join(dir, "met.json"), filepath.Join(dir, "met.json"))
	if code != exitOK || !strings.Contains(out, "compare: OK") {
		t.Errorf("compare met met: exit %d\n%s\n%s", code, out, errs)
	}
}

func TestCLICapacityRequire(t *testing.T) {
	srv := startJWTGate(t)
	file := mint(t, srv, 200)
	dir := t.TempDir()
	// Bounded to steps of 50, 100 and 200/s: the first must pass even on
	// a loaded machine, so 50/s is met.
	sum := filepath.Join(dir, "cap.json")
	code, out, errs := runCLI(t, "capacity", "-t", file, "--slo", "p99=2s", "--start", "50", "--max", "200",
		"--step-duration", "300ms", "--max-steps", "3", "--connections", "4", "--require", "50/s", "--summary", sum)
	if code != exitOK || !strings.Contains(out, "gate: capacity >= 50/s: found ") || !strings.Contains(out, "/s: PASS") {
		t.Errorf("--require 50/s: exit %d, want 0 and a passing gate\n%s\n%s", code, out, errs)
	}
	var res loadgen.CapacityResult
	b, _ := os.ReadFile(sum)
	if err := json.Unmarshal(b, &res); err != nil || !res.Pass || len(res.Gates) != 1 || res.Required != 50 || res.Capacity < 50 {
		t.Errorf("summary %v %+v", err, res)
	}
	// A capacity below the requirement: --max-steps 1 stops at the first
	// rate (50/s), short of 150/s.
	low := filepath.Join(dir, "low.json")
	code, out, errs = runCLI(t, "capacity", "-t", file, "--slo", "p99=2s", "--start", "50", "--max", "200",
		"--step-duration", "300ms", "--max-steps", "1", "--connections", "4", "--require", "150/s", "--summary", low)
	if code != exitMismatch || !strings.Contains(out, "gate: capacity >= 150/s: found ") || !strings.Contains(out, "/s: FAIL") {
		t.Errorf("low capacity: exit %d\n%s\n%s", code, out, errs)
	}
	// NEW fails a gate OLD did not: a regression.
	code, out, _ = runCLI(t, "compare", sum, low)
	if code != exitMismatch || !strings.Contains(out, "gate capacity >= 150/s") || !strings.Contains(out, "REGRESSION") {
		t.Errorf("compare capacities: exit %d\n%s", code, out)
	}
}

func TestCLIGateUsageErrors(t *testing.T) {
	dir := t.TempDir()
	sum := filepath.Join(dir, "s.json")
	os.WriteFile(sum, []byte(`{"requests":1,"latency":{}}`), 0o644)
	for _, tc := range []struct {
		args []string
		want string
		code int // 0: exitUsage
	}{
		{[]string{"attack", "-t", sum, "--slo", "p99"}, "SLO", 0},
		{[]string{"attack", "-t", sum, "--shard", "4/3"}, "shard \"4/3\"", 0},
		{[]string{"capacity", "-t", sum, "--require", "fast"}, "--require \"fast\"", 0},
		{[]string{"capacity", "-t", sum, "--require", "500000/s"}, "above --max", 0},
		{[]string{"capacity", "-t", sum, "--step-duration", "20m"}, "--step-duration 20m0s is out of range: want more than 0 and at most 10m", 0},
		{[]string{"capacity", "-t", sum, "--max-steps", "51"}, "--max-steps 51 is out of range: want 1 to 50", 0},
		{[]string{"attack", "-t", sum, "--duration", "2h"}, "--duration 2h0m0s is out of range", 0},
		{[]string{"compare", sum}, "want two summaries", 0},
		{[]string{"compare", sum, sum, "--threshold", "x"}, "--threshold \"x\"", 0},
		// Input that cannot be read is a failure (1), not a usage error.
		{[]string{"compare", sum, filepath.Join(dir, "missing.json")}, "NEW: open", exitFailure},
		{[]string{"compare", sum, filepath.Join("..", "..", "loadgen", "testdata", "capacity.svg")}, "NEW: not a JSON summary", exitFailure},
		{[]string{"report"}, "want one or more", 0},
		{[]string{"report", dir}, "is " + dir + " the --output of loadgen attack?", exitFailure},
		{[]string{"report", "--slo", "p0=1ms", dir}, "SLO quantile", 0},
	} {
		if tc.code == 0 {
			tc.code = exitUsage
		}
		code, out, errs := runCLI(t, tc.args...)
		if code != tc.code || !strings.Contains(out+errs, tc.want) {
			t.Errorf("%q: exit %d, output %q %q; want exit %d containing %q", tc.args, code, out, errs, tc.code, tc.want)
		}
	}
	for _, cmd := range []string{"compare", "report"} {
		if code, _, errs := runCLI(t, cmd, "--help"); code != exitOK || !strings.Contains(errs, "Usage: loadgen "+cmd) {
			t.Errorf("%s --help: exit %d %q", cmd, code, errs)
		}
	}
}

// TestCLIShardedGeneratorsReport runs three generator processes at once
// against one real server on loopback, each with --shard i/3, and merges
// their outputs with loadgen report.
func TestCLIShardedGeneratorsReport(t *testing.T) {
	srv := startJWTGate(t)
	file := mint(t, srv, 300)
	base := t.TempDir()
	const n = 3
	var cmds []*exec.Cmd
	var outs []*bytes.Buffer
	var dirs []string
	for i := 1; i <= n; i++ {
		dir := filepath.Join(base, fmt.Sprintf("gen%d", i))
		dirs = append(dirs, dir)
		cmd := exec.Command(os.Args[0], "attack", "-t", file, "--rate", "300/s", "--duration", "2s",
			"--connections", "4", "--shard", fmt.Sprintf("%d/%d", i, n), "-o", dir)
		cmd.Env = append(os.Environ(), "LOADGEN_TEST_MAIN=1")
		var out bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &out
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		cmds, outs = append(cmds, cmd), append(outs, &out)
	}
	var total uint64
	for i, cmd := range cmds {
		if err := cmd.Wait(); err != nil {
			t.Fatalf("generator %d: %v\n%s", i+1, err, outs[i])
		}
		r := readReport(t, filepath.Join(dirs[i], loadgen.SummaryFile))
		if r.Shard != fmt.Sprintf("%d/%d", i+1, n) || r.RequestedRate != 100 || !strings.Contains(outs[i].String(), "shard       ") {
			t.Errorf("generator %d: shard %q at %v/s\n%s", i+1, r.Shard, r.RequestedRate, outs[i])
		}
		total += r.Requests
	}
	merged := filepath.Join(base, "merged")
	code, out, errs := runCLI(t, append([]string{"report", "--slo", "p99=5s", "-o", merged}, dirs...)...)
	if code != exitOK {
		t.Fatalf("report exit %d\n%s\n%s", code, out, errs)
	}
	for _, want := range []string{"generators  3, merged", "gate        shards 1..3", "3 of 3", "gate        p99 <= 5s",
		"result      PASS", "key_inactive", "300/3s ×3"} {
		if !strings.Contains(out, want) {
			t.Errorf("report lacks %q:\n%s", want, out)
		}
	}
	m := readReport(t, filepath.Join(merged, loadgen.SummaryFile))
	var sent uint64
	for _, c := range m.Classes {
		sent += c.Sent
	}
	// Quantiles are over every request of every generator: the merged
	// count is the sum, and so is the per-class table.
	if m.Requests != total || sent != total || m.Generators != n || total < 400 || m.RequestedRate != 300 || !m.Pass {
		t.Errorf("merged requests %d, classes %d, generators %d, rate %v, pass %v; generators sent %d",
			m.Requests, sent, m.Generators, m.RequestedRate, m.Pass, total)
	}
	if m.Latency.P50 <= 0 || m.Latency.P99 < m.Latency.P50 || m.Latency.Max < m.Latency.P99 {
		t.Errorf("merged latency %+v", m.Latency)
	}
	// A generator missing fails the report's shard gate; so does an SLO.
	code, out, _ = runCLI(t, "report", dirs[0], dirs[2])
	if code != exitMismatch || !strings.Contains(out, "2/3 missing") {
		t.Errorf("report without shard 2: exit %d\n%s", code, out)
	}
	code, out, _ = runCLI(t, append([]string{"report", "--slo", "p50=1ns"}, dirs...)...)
	if code != exitMismatch || !strings.Contains(out, "gate        p50 <= 1ns") {
		t.Errorf("report with a missed SLO: exit %d\n%s", code, out)
	}
}
