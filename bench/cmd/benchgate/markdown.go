package main

import (
	"fmt"
	"io"
	"math"
	"strings"
)

// Headline is the one-line outcome: FAIL, PASS or PASS with inconclusive
// benchmarks.
func (r *Report) Headline() string {
	reg, inc, imp := r.Count(Regression), r.Count(Inconclusive), r.Count(Improved)
	var parts []string
	if reg > 0 {
		parts = append(parts, plural(reg, "regression"))
	}
	if inc > 0 {
		parts = append(parts, fmt.Sprintf("%d inconclusive", inc))
	}
	if imp > 0 {
		parts = append(parts, fmt.Sprintf("%d improved", imp))
	}
	parts = append(parts, fmt.Sprintf("%d of %d unchanged", r.Count(Pass), len(r.Rows)))
	word := "PASS"
	switch {
	case reg > 0:
		word = "FAIL"
	case inc > 0:
		word = "INCONCLUSIVE"
	}
	return word + ": " + strings.Join(parts, ", ")
}

func plural(n int, s string) string {
	if n == 1 {
		return "1 " + s
	}
	return fmt.Sprintf("%d %ss", n, s)
}

// WriteMarkdown writes the report for a pull-request comment: the outcome,
// the rules, then one table with regressions first.
func (r *Report) WriteMarkdown(w io.Writer, reruns int) error {
	var b strings.Builder
	fmt.Fprintf(&b, "## Benchmark gate: %s\n\n", r.Headline())
	fmt.Fprintf(&b, "Fails on a time/op slowdown over %.0f%% that is significant (Mann-Whitney U, p < %.2f), or on any increase in allocs/op. "+
		"Δ time is the median of the per-round ratios head/base (base and head run alternately); "+
		"a benchmark whose spread (the ± of its %.0f%% confidence interval) is wider than the threshold is rerun",
		100*r.Opt.Threshold, r.Opt.Alpha, 100*r.Opt.Confidence)
	if reruns > 0 {
		fmt.Fprintf(&b, " (%s here)", plural(reruns, "rerun"))
	}
	b.WriteString(" and, if it stays wide, reported as inconclusive instead of passing or failing on noise. " +
		"Time is the benchmark process's CPU time per op where the benchmark reports it (cpu-ns/op), since wall time on a shared machine measures the other load; the wall-time change is shown beside it.\n\n")
	if v := r.describe(); v != "" {
		b.WriteString(v + "\n\n")
	}
	b.WriteString("| | benchmark | time/op base | time/op head | Δ time | p | Δ wall time | allocs/op | B/op | why |\n")
	b.WriteString("|---|---|--:|--:|--:|--:|--:|--:|--:|---|\n")
	for _, row := range r.Rows {
		fmt.Fprintf(&b, "| %s | `%s` | %s | %s | %s | %s | %s | %s | %s | %s |\n",
			icon(row.Verdict), row.Name,
			timeCell(row.Time, true), timeCell(row.Time, false), deltaCell(row.Time), pCell(row.Time),
			deltaCell(row.Wall), changeCell(row.Allocs), changeCell(row.Bytes), row.Why)
	}
	for _, n := range r.OnlyBase {
		fmt.Fprintf(&b, "\n`%s` is only in the base results (removed or renamed).", n)
	}
	for _, n := range r.OnlyHead {
		fmt.Fprintf(&b, "\n`%s` is only in the head results (new).", n)
	}
	b.WriteString("\n")
	_, err := io.WriteString(w, b.String())
	return err
}

// describe names the two sides and the machine from the files' config
// lines (commit:, cpu:).
func (r *Report) describe() string {
	var parts []string
	if bc, hc := r.BaseConfig["commit"], r.HeadConfig["commit"]; bc != "" || hc != "" {
		parts = append(parts, fmt.Sprintf("base `%s`, head `%s`", bc, hc))
	}
	if cpu := r.HeadConfig["cpu"]; cpu != "" {
		parts = append(parts, "cpu: "+cpu)
	}
	if id := r.HeadConfig["cpu-id"]; id != "" {
		parts = append(parts, "cpu-id: "+id)
	}
	if n := r.HeadConfig["nproc"]; n != "" {
		parts = append(parts, n+" cores")
	}
	lo, hi := 0, 0
	for _, row := range r.Rows {
		if row.Time != nil {
			n := min(row.Time.BaseN, row.Time.HeadN)
			if lo == 0 || n < lo {
				lo = n
			}
			hi = max(hi, n)
		}
	}
	switch {
	case lo > 0 && lo == hi:
		parts = append(parts, fmt.Sprintf("base and head run alternately, %d runs each", lo))
	case lo > 0:
		parts = append(parts, fmt.Sprintf("base and head run alternately, %d–%d runs each (reruns)", lo, hi))
	}
	return strings.Join(parts, "; ")
}

func icon(v Verdict) string {
	return [...]string{"❌ regression", "❔ inconclusive", "✅ improved", "✅ pass"}[v]
}

func timeCell(m *Metric, base bool) string {
	if m == nil {
		return ""
	}
	cpu := ""
	if m.Unit == unitCPU {
		cpu = " CPU"
	}
	s := m.Head
	if base {
		s = m.Base
	}
	hw := halfWidth(s)
	if math.IsInf(hw, 0) {
		return fmtTime(s.Center) + cpu + " ±∞"
	}
	return fmt.Sprintf("%s%s ±%.0f%%", fmtTime(s.Center), cpu, 100*hw)
}

func deltaCell(m *Metric) string {
	if m == nil {
		return ""
	}
	if m.Paired {
		return fmt.Sprintf("%+.1f%% %s", 100*m.Delta, fmtSpread(m.Spread))
	}
	return fmt.Sprintf("%+.1f%%", 100*m.Delta)
}

func pCell(m *Metric) string {
	if m == nil {
		return ""
	}
	return fmt.Sprintf("%.3f", m.P)
}

func changeCell(m *Metric) string {
	if m == nil {
		return ""
	}
	if m.Base.Center == m.Head.Center {
		return fmtNum(m.Head.Center)
	}
	return fmtNum(m.Base.Center) + " → " + fmtNum(m.Head.Center)
}

// fmtTime formats seconds per op with a unit that keeps 3-4 digits.
func fmtTime(sec float64) string {
	switch {
	case sec >= 1:
		return fmt.Sprintf("%.3gs", sec)
	case sec >= 1e-3:
		return fmt.Sprintf("%.3gms", sec*1e3)
	case sec >= 1e-6:
		return fmt.Sprintf("%.3gµs", sec*1e6)
	}
	return fmt.Sprintf("%.3gns", sec*1e9)
}
