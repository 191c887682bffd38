package main

import (
	"cmp"
	"fmt"
	"io"
	"math"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"golang.org/x/perf/benchfmt"
	"golang.org/x/perf/benchmath"
)

// Verdict is the gate's decision on one benchmark. The order is the order
// of the report: regressions first.
type Verdict int

const (
	Regression   Verdict = iota // slower beyond the threshold, or more allocations
	Inconclusive                // the spread is too wide to tell
	Improved                    // significantly faster or fewer allocations
	Pass                        // no significant change beyond the threshold
)

func (v Verdict) String() string {
	return [...]string{"regression", "inconclusive", "improved", "pass"}[v]
}

// Options are the gate's thresholds.
type Options struct {
	// Threshold is the largest time/op slowdown that passes (0.05 = 5%).
	Threshold float64
	// Alpha is the significance level of the Mann-Whitney U test
	// (benchstat's default test and level: 0.05).
	Alpha float64
	// Confidence is the level of the median's confidence interval whose
	// half-width is the spread (benchstat's ±: 0.95).
	Confidence float64
}

// DefaultOptions are benchstat's levels and a 5% threshold.
var DefaultOptions = Options{Threshold: 0.05, Alpha: 0.05, Confidence: 0.95}

// Units compared. cpu-sec/op is the benchmark process's CPU time per op
// (bench/ reports it as cpu-ns/op): where a benchmark reports it, it
// decides instead of the wall time (sec/op), which on a shared machine
// measures the neighbours' load more than the code.
const (
	unitTime   = "sec/op"
	unitCPU    = "cpu-sec/op"
	unitAllocs = "allocs/op"
	unitBytes  = "B/op"
)

// Metric is the comparison of one unit of one benchmark.
type Metric struct {
	Unit       string
	Base, Head benchmath.Summary
	BaseN      int
	HeadN      int
	BaseMin    float64
	BaseMax    float64
	HeadMin    float64
	HeadMax    float64
	P          float64 // Mann-Whitney U test
	// Paired is set when both sides have the same number of runs: the
	// i-th run of each side come from the same round of the alternating
	// comparison, so Ratio summarizes the per-round ratios head/base,
	// which cancel machine load that lasts longer than a round.
	Paired  bool
	Ratio   benchmath.Summary
	Delta   float64 // head/base - 1: the median per-round ratio, else the ratio of the medians
	Spread  float64 // relative half-width of Ratio's confidence interval, else the wider of the two sides'
	Best    float64 // the smallest change the confidence intervals allow
	Worst   float64 // the largest
	Verdict Verdict
	Why     string
}

// Row is one benchmark: its time per op (CPU time when reported, else
// wall time) and allocs/op decide; the wall time beside CPU time and B/op
// are shown.
type Row struct {
	Name    string
	Time    *Metric // unit cpu-sec/op or sec/op
	Wall    *Metric // sec/op when Time is CPU time
	Allocs  *Metric
	Bytes   *Metric
	Verdict Verdict
	Why     string
}

// Report is the gate's outcome over two result files.
type Report struct {
	Opt        Options
	Rows       []Row    // sorted: regressions, inconclusive, improved, pass
	OnlyBase   []string // benchmarks missing from head
	OnlyHead   []string // benchmarks new in head
	BaseConfig map[string]string
	HeadConfig map[string]string
}

// Count returns how many rows have verdict v.
func (r *Report) Count(v Verdict) int {
	n := 0
	for _, row := range r.Rows {
		if row.Verdict == v {
			n++
		}
	}
	return n
}

// Failed reports whether the gate fails: a regression.
func (r *Report) Failed() bool { return r.Count(Regression) > 0 }

// samples are the values of one file: name -> unit -> values.
type samples struct {
	config map[string]string
	values map[string]map[string][]float64
	order  []string
}

// read parses a result file in the Go benchmark format with benchfmt (the
// reader benchstat uses; ns/op becomes sec/op).
func read(r io.Reader, name string) (*samples, error) {
	s := &samples{config: map[string]string{}, values: map[string]map[string][]float64{}}
	br := benchfmt.NewReader(r, name)
	for br.Scan() {
		res, ok := br.Result().(*benchfmt.Result)
		if !ok {
			continue // unit metadata, or a line that is not a result
		}
		for _, c := range res.Config {
			s.config[c.Key] = string(c.Value)
		}
		n := string(res.Name.Full())
		u := s.values[n]
		if u == nil {
			u = map[string][]float64{}
			s.values[n] = u
			s.order = append(s.order, n)
		}
		for _, v := range res.Values {
			u[v.Unit] = append(u[v.Unit], v.Value)
		}
	}
	if err := br.Err(); err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	if len(s.order) == 0 {
		return nil, fmt.Errorf("%s: no benchmark results", name)
	}
	return s, nil
}

// Compare reads the base and head result files and decides every benchmark
// present in both.
func Compare(base, head io.Reader, opt Options) (*Report, error) {
	b, err := read(base, "base")
	if err != nil {
		return nil, err
	}
	h, err := read(head, "head")
	if err != nil {
		return nil, err
	}
	rep := &Report{Opt: opt, BaseConfig: b.config, HeadConfig: h.config}
	th := &benchmath.Thresholds{CompareAlpha: opt.Alpha}
	for _, name := range b.order {
		hu, ok := h.values[name]
		if !ok {
			rep.OnlyBase = append(rep.OnlyBase, name)
			continue
		}
		bu := b.values[name]
		row := Row{Name: name}
		metric := func(unit string) *Metric {
			bv, hv := bu[unit], hu[unit]
			if len(bv) == 0 || len(hv) == 0 {
				return nil
			}
			return compareUnit(unit, bv, hv, th, opt)
		}
		row.Time, row.Allocs, row.Bytes = metric(unitCPU), metric(unitAllocs), metric(unitBytes)
		if row.Time == nil {
			row.Time = metric(unitTime)
		} else {
			row.Wall = metric(unitTime)
			row.Wall.Verdict, row.Wall.Why = Pass, ""
		}
		if row.Time == nil && row.Allocs == nil {
			continue
		}
		row.Verdict = Pass
		for _, m := range []*Metric{row.Time, row.Allocs} {
			if m != nil && m.Verdict < row.Verdict {
				row.Verdict, row.Why = m.Verdict, m.Why
			}
		}
		rep.Rows = append(rep.Rows, row)
	}
	for _, name := range h.order {
		if _, ok := b.values[name]; !ok {
			rep.OnlyHead = append(rep.OnlyHead, name)
		}
	}
	slices.SortStableFunc(rep.Rows, func(x, y Row) int { return cmp.Compare(x.Verdict, y.Verdict) })
	return rep, nil
}

func compareUnit(unit string, bv, hv []float64, th *benchmath.Thresholds, opt Options) *Metric {
	// NewSample sorts its values in place: give it copies, the runs' order
	// pairs them below.
	bs, hs := benchmath.NewSample(slices.Clone(bv), th), benchmath.NewSample(slices.Clone(hv), th)
	m := &Metric{Unit: unit, BaseN: len(bv), HeadN: len(hv),
		Base: benchmath.AssumeNothing.Summary(bs, opt.Confidence),
		Head: benchmath.AssumeNothing.Summary(hs, opt.Confidence)}
	m.BaseMin, m.BaseMax = slices.Min(bv), slices.Max(bv)
	m.HeadMin, m.HeadMax = slices.Min(hv), slices.Max(hv)
	c := benchmath.AssumeNothing.Compare(bs, hs)
	m.P = c.P
	significant := c.P < c.Alpha
	m.Delta = ratio(m.Head.Center, m.Base.Center) - 1
	m.Spread = max(halfWidth(m.Base), halfWidth(m.Head))
	m.Best = ratio(m.Head.Lo, m.Base.Hi) - 1
	m.Worst = ratio(m.Head.Hi, m.Base.Lo) - 1
	if len(bv) == len(hv) && (unit == unitTime || unit == unitCPU) {
		r := make([]float64, len(bv))
		for i := range bv {
			r[i] = ratio(hv[i], bv[i])
		}
		m.Paired = true
		m.Ratio = benchmath.AssumeNothing.Summary(benchmath.NewSample(r, th), opt.Confidence)
		m.Delta, m.Spread = m.Ratio.Center-1, halfWidth(m.Ratio)
		m.Best, m.Worst = m.Ratio.Lo-1, m.Ratio.Hi-1
	}
	switch unit {
	case unitAllocs:
		decideAllocs(m, significant)
	case unitTime, unitCPU:
		decideTime(m, significant, opt.Threshold)
	default:
		m.Verdict = Pass
	}
	return m
}

// decideTime: a significant slowdown (Mann-Whitney U) beyond the
// threshold fails when the spread is within the threshold or when even the
// best case the confidence interval allows is beyond it. A spread wider
// than the threshold that cannot settle the question, or a slowdown the
// interval puts beyond the threshold without significance, is
// inconclusive.
func decideTime(m *Metric, significant bool, threshold float64) {
	pct := func(x float64) string { return fmt.Sprintf("%+.1f%%", 100*x) }
	what := "time/op"
	if m.Unit == unitCPU {
		what = "CPU time/op"
	}
	switch {
	case significant && m.Delta > threshold && (m.Spread <= threshold || m.Best > threshold):
		m.Verdict = Regression
		m.Why = fmt.Sprintf("%s %s (p=%.3f), over the %s threshold", what, pct(m.Delta), m.P, fmtPct(threshold))
	case m.Delta > threshold && (significant || m.Best > threshold):
		m.Verdict = Inconclusive
		m.Why = fmt.Sprintf("%s %s (p=%.3f) but the spread %s is wider than the threshold", what, pct(m.Delta), m.P, fmtSpread(m.Spread))
		if !significant {
			m.Why = fmt.Sprintf("%s %s but not significant (p=%.3f)", what, pct(m.Delta), m.P)
		}
	case m.Spread <= threshold || m.Worst <= threshold:
		m.Verdict = Pass
		if significant && m.Delta < -threshold {
			m.Verdict = Improved
			m.Why = fmt.Sprintf("%s %s (p=%.3f)", what, pct(m.Delta), m.P)
		}
	default:
		m.Verdict = Inconclusive
		m.Why = fmt.Sprintf("%s spread %s is wider than the %s threshold", what, fmtSpread(m.Spread), fmtPct(threshold))
	}
}

// decideAllocs: any increase of the median allocs/op fails, when it is
// significant or every head run allocated more than every base run; an
// increase of the median alone is inconclusive.
func decideAllocs(m *Metric, significant bool) {
	switch {
	case m.Head.Center > m.Base.Center && (significant || m.HeadMin > m.BaseMax):
		m.Verdict = Regression
		m.Why = fmt.Sprintf("allocs/op %s → %s", fmtNum(m.Base.Center), fmtNum(m.Head.Center))
	case m.Head.Center > m.Base.Center:
		m.Verdict = Inconclusive
		m.Why = fmt.Sprintf("median allocs/op %s → %s, not consistently", fmtNum(m.Base.Center), fmtNum(m.Head.Center))
	case m.Head.Center < m.Base.Center && (significant || m.HeadMax < m.BaseMin):
		m.Verdict = Improved
		m.Why = fmt.Sprintf("allocs/op %s → %s", fmtNum(m.Base.Center), fmtNum(m.Head.Center))
	default:
		m.Verdict = Pass
	}
}

// ratio is a/b, with 0/0 = 1 (both zero: unchanged).
func ratio(a, b float64) float64 {
	if b == 0 {
		if a == 0 {
			return 1
		}
		return math.Inf(1)
	}
	return a / b
}

// halfWidth is the wider side of s's confidence interval relative to its
// center: benchstat's ±. It is +Inf when the sample is too small for an
// interval.
func halfWidth(s benchmath.Summary) float64 {
	if s.Center == 0 {
		if s.Lo == 0 && s.Hi == 0 {
			return 0
		}
		return math.Inf(1)
	}
	return max(s.Hi-s.Center, s.Center-s.Lo) / math.Abs(s.Center)
}

func fmtNum(x float64) string { return fmt.Sprintf("%.4g", x) }

// fmtPct formats a fraction as a percentage: 0.05 -> "5%".
func fmtPct(x float64) string { return strconv.FormatFloat(100*x, 'f', -1, 64) + "%" }

// fmtSpread formats a spread: "±7.3%", or "±∞" when a sample is too small
// for a confidence interval.
func fmtSpread(x float64) string {
	if math.IsInf(x, 0) {
		return "±∞ (too few runs)"
	}
	return fmt.Sprintf("±%.1f%%", 100*x)
}

// RerunPattern returns a `go test -bench` pattern that selects the
// inconclusive benchmarks ("" when there are none): per name level the
// alternatives seen at that level, so it may select a few more.
func (r *Report) RerunPattern() string {
	var levels [][]string
	for _, row := range r.Rows {
		if row.Verdict != Inconclusive {
			continue
		}
		for i, part := range nameLevels(row.Name) {
			if i == len(levels) {
				levels = append(levels, nil)
			}
			if !slices.Contains(levels[i], part) {
				levels[i] = append(levels[i], part)
			}
		}
	}
	var b strings.Builder
	for i, alts := range levels {
		if i > 0 {
			b.WriteByte('/')
		}
		for j := range alts {
			alts[j] = regexp.QuoteMeta(alts[j])
		}
		b.WriteString("^(" + strings.Join(alts, "|") + ")$")
	}
	return b.String()
}

// nameLevels splits a benchfmt name ("Verify/bits=2048/path=cold-2") into
// the levels `go test -bench` matches: "BenchmarkVerify", "bits=2048",
// "path=cold" (the -GOMAXPROCS suffix is not part of the name).
func nameLevels(name string) []string {
	base, parts := benchfmt.Name(name).Parts()
	levels := []string{"Benchmark" + string(base)}
	for _, p := range parts {
		if p[0] == '/' {
			levels = append(levels, string(p[1:]))
		}
	}
	return levels
}
