package loadgen

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"sort"
	"strings"
	"time"
)

// CapacityConfig configures Capacity.
type CapacityConfig struct {
	// Attack is the template of every step: targets, connections, workers.
	// Its Rate and Duration are set per step.
	Attack AttackConfig
	SLO    SLO
	// Start is the first rate tried (req/s, default 500); the rate doubles
	// while steps pass, then bisects between the best pass and the first
	// failure.
	Start float64
	// Max bounds the rate tried (default MaxRate).
	Max float64
	// StepDuration is the length of one step (default 5s).
	StepDuration time.Duration
	// Precision stops the bisection when the gap between pass and fail is
	// below this fraction of the rate (default 0.05).
	Precision float64
	// MaxSteps bounds the number of steps (default 12).
	MaxSteps int
	// Step, when set, is called after each step.
	Step func(Step)
}

// Step is one rate tried by Capacity.
type Step struct {
	N          int           `json:"n"`
	Rate       float64       `json:"rate"`     // requested, req/s
	Achieved   float64       `json:"achieved"` // sent, req/s
	P50        time.Duration `json:"p50_ns"`
	SLOLatency time.Duration `json:"slo_latency_ns"` // at the SLO's quantile
	Mismatches uint64        `json:"mismatches"`
	Errors     uint64        `json:"errors"`
	CPUShare   float64       `json:"generator_cpu_share"`
	Pass       bool          `json:"pass"`
	Why        string        `json:"why,omitempty"`
}

// CapacityResult is the outcome of Capacity.
type CapacityResult struct {
	SLO      string  `json:"slo"`
	Capacity float64 `json:"capacity"` // highest passing rate, req/s (0 if none)
	Steps    []Step  `json:"steps"`
	// GeneratorBound is set when a failing step had the generator's CPU
	// saturated: the capacity is then a lower bound.
	GeneratorBound bool `json:"generator_bound"`
	// Required is the capacity --require asks for (0: none); Gates holds
	// "capacity >= Required" and Pass whether it held (Require).
	Required float64 `json:"required,omitempty"`
	Gates    []Gate  `json:"gates,omitempty"`
	Pass     bool    `json:"pass"`
}

// Capacity finds the highest rate that holds the SLO with zero mismatches
// and zero errors, while the generator keeps the requested rate: doubling
// from Start until a step fails, then bisecting. The number of steps and
// each step's duration are bounded.
func Capacity(ctx context.Context, cfg CapacityConfig) (*CapacityResult, error) {
	if cfg.SLO.Max <= 0 {
		return nil, errors.New("capacity: no SLO")
	}
	if cfg.Start <= 0 {
		cfg.Start = 500
	}
	if cfg.Max <= 0 || cfg.Max > MaxRate {
		cfg.Max = MaxRate
	}
	cfg.Start = min(cfg.Start, cfg.Max)
	if cfg.StepDuration <= 0 {
		cfg.StepDuration = 5 * time.Second
	}
	if cfg.Precision <= 0 {
		cfg.Precision = 0.05
	}
	if cfg.MaxSteps <= 0 {
		cfg.MaxSteps = 12
	}
	res := &CapacityResult{SLO: cfg.SLO.Name + " <= " + cfg.SLO.Max.String()}
	lo, hi := 0.0, math.Inf(1)
	rate := cfg.Start
	for n := 1; n <= cfg.MaxSteps && ctx.Err() == nil; n++ {
		ac := cfg.Attack
		ac.Rate = RatePerSecond(math.Round(rate))
		ac.Duration = cfg.StepDuration
		ac.Results, ac.Status = nil, nil
		rep, err := Attack(ctx, ac)
		if err != nil {
			return res, err
		}
		st := Step{N: n, Rate: math.Round(rate), Achieved: rep.SentRate, P50: rep.Latency.P50,
			SLOLatency: rep.Latency.Quantile(cfg.SLO.Quantile), Mismatches: rep.Mismatches, Errors: rep.Errors,
			CPUShare: rep.CPU.Share}
		var why []string
		if rep.Mismatches > 0 {
			why = append(why, fmt.Sprintf("%d mismatches", rep.Mismatches))
		}
		if rep.Errors > 0 {
			why = append(why, fmt.Sprintf("%d errors", rep.Errors))
		}
		if st.SLOLatency > cfg.SLO.Max {
			why = append(why, fmt.Sprintf("%s %s > %s", cfg.SLO.Name, fmtDur(st.SLOLatency), cfg.SLO.Max))
		}
		if rep.SentRate < rateBehind*st.Rate {
			why = append(why, fmt.Sprintf("sent only %.0f/s", rep.SentRate))
		}
		if rep.CPU.Saturated {
			why = append(why, "generator CPU saturated")
		}
		st.Pass = len(why) == 0 || (len(why) == 1 && rep.CPU.Saturated && why[0] == "generator CPU saturated")
		st.Why = strings.Join(why, "; ")
		if !st.Pass && rep.CPU.Saturated {
			res.GeneratorBound = true
		}
		res.Steps = append(res.Steps, st)
		if cfg.Step != nil {
			cfg.Step(st)
		}
		if rep.Mismatches > 0 {
			break // a wrong verdict is a bug, not a capacity limit
		}
		if st.Pass {
			lo = st.Rate
			res.Capacity = lo
		} else {
			hi = st.Rate
		}
		switch {
		case math.IsInf(hi, 1):
			if lo >= cfg.Max {
				return res, nil
			}
			rate = min(lo*2, cfg.Max)
		case hi-lo <= cfg.Precision*hi || hi-lo < 1:
			return res, nil
		default:
			rate = (lo + hi) / 2
		}
	}
	return res, ctx.Err()
}

// StepHeader is the header of the per-step table.
const StepHeader = "step       rate     achieved       p50  slo-latency  mismatches  errors  gen-cpu  verdict"

// FormatStep formats one step as a row of the table (fixed-width columns,
// so rows printed as steps end line up).
func FormatStep(s Step) string {
	v := "pass"
	if !s.Pass {
		v = "FAIL: " + s.Why
	} else if s.Why != "" {
		v = "pass (" + s.Why + ")"
	}
	return fmt.Sprintf("%4d %10s %12s %9s %12s %11d %7d %7.0f%%  %s",
		s.N, fmt.Sprintf("%.0f/s", s.Rate), fmt.Sprintf("%.1f/s", s.Achieved), fmtDur(s.P50), fmtDur(s.SLOLatency),
		s.Mismatches, s.Errors, 100*s.CPUShare, v)
}

// WriteTable writes every step and the final line
// "capacity: N req/s at p99 <= 10ms".
func (r *CapacityResult) WriteTable(w io.Writer) error {
	var b strings.Builder
	b.WriteString(StepHeader + "\n")
	for _, s := range r.Steps {
		b.WriteString(FormatStep(s) + "\n")
	}
	b.WriteString(r.Line() + "\n")
	_, err := io.WriteString(w, b.String())
	return err
}

// Line is the one-line result: "capacity: N req/s at p99 <= 10ms".
func (r *CapacityResult) Line() string {
	if r.LowerBound() {
		return fmt.Sprintf("capacity: >= %.0f req/s at %s (no step failed; raise --max or --max-steps)", r.Capacity, r.SLO)
	}
	return fmt.Sprintf("capacity: %.0f req/s at %s", r.Capacity, r.SLO)
}

// LowerBound reports whether the capacity is only a lower bound: some
// step passed and none failed, so the search stopped (at --max or
// --max-steps) before finding a rate the server could not hold.
func (r *CapacityResult) LowerBound() bool {
	if r.Capacity <= 0 || len(r.Steps) == 0 {
		return false
	}
	for _, s := range r.Steps {
		if !s.Pass {
			return false
		}
	}
	return true
}

// WriteSVG draws achieved rate against p50 and the SLO quantile's latency,
// with the SLO as a dashed line, as a standalone SVG.
func (r *CapacityResult) WriteSVG(w io.Writer, slo SLO) error {
	const W, H, L, R, T, B = 760, 420, 70, 20, 40, 50
	steps := append([]Step(nil), r.Steps...)
	sort.Slice(steps, func(i, j int) bool { return steps[i].Achieved < steps[j].Achieved })
	maxX, maxY := 1.0, slo.Max.Seconds()*1000*1.25
	for _, s := range steps {
		maxX = max(maxX, s.Achieved)
		maxY = max(maxY, s.SLOLatency.Seconds()*1000)
	}
	maxX = niceCeil(maxX * 1.02)
	maxY = niceCeil(math.Min(maxY*1.02, slo.Max.Seconds()*1000*5)) // keep the SLO readable
	x := func(v float64) float64 { return L + v/maxX*(W-L-R) }
	y := func(ms float64) float64 { return H - B - math.Min(ms, maxY)/maxY*(H-T-B) }
	var b strings.Builder
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" viewBox="0 0 %d %d" font-family="sans-serif" font-size="12">`+"\n", W, H, W, H)
	fmt.Fprintf(&b, `<rect width="%d" height="%d" fill="white"/>`+"\n", W, H)
	fmt.Fprintf(&b, `<text x="%d" y="22" font-size="15">jwtgate capacity: latency vs achieved rate (%s)</text>`+"\n", L, xmlEscape(r.Line()))
	fmt.Fprintf(&b, `<line x1="%d" y1="%d" x2="%d" y2="%d" stroke="black"/><line x1="%d" y1="%d" x2="%d" y2="%d" stroke="black"/>`+"\n",
		L, H-B, W-R, H-B, L, T, L, H-B)
	for i := 0; i <= 5; i++ {
		vx, vy := maxX*float64(i)/5, maxY*float64(i)/5
		fmt.Fprintf(&b, `<text x="%.1f" y="%d" text-anchor="middle">%.0f</text>`+"\n", x(vx), H-B+18, vx)
		fmt.Fprintf(&b, `<text x="%d" y="%.1f" text-anchor="end">%g</text>`+"\n", L-6, y(vy)+4, math.Round(vy*1000)/1000)
		fmt.Fprintf(&b, `<line x1="%d" y1="%.1f" x2="%d" y2="%.1f" stroke="#ddd"/>`+"\n", L, y(vy), W-R, y(vy))
	}
	fmt.Fprintf(&b, `<text x="%d" y="%d" text-anchor="middle">achieved rate (req/s)</text>`+"\n", (W+L)/2, H-12)
	fmt.Fprintf(&b, `<text x="16" y="%d" transform="rotate(-90 16 %d)" text-anchor="middle">latency (ms)</text>`+"\n", (H)/2, H/2)
	sloY := y(slo.Max.Seconds() * 1000)
	fmt.Fprintf(&b, `<line x1="%d" y1="%.1f" x2="%d" y2="%.1f" stroke="#888" stroke-dasharray="6 4"/><text x="%d" y="%.1f" fill="#555">SLO %s</text>`+"\n",
		L, sloY, W-R, sloY, L+220, sloY-4, xmlEscape(slo.Name+" "+slo.Max.String()))
	series := []struct {
		name, color string
		val         func(Step) time.Duration
	}{{"p50", "#1f77b4", func(s Step) time.Duration { return s.P50 }},
		{slo.Name, "#d62728", func(s Step) time.Duration { return s.SLOLatency }}}
	for i, se := range series {
		var pts []string
		for _, s := range steps {
			pts = append(pts, fmt.Sprintf("%.1f,%.1f", x(s.Achieved), y(se.val(s).Seconds()*1000)))
		}
		fmt.Fprintf(&b, `<polyline fill="none" stroke="%s" stroke-width="2" points="%s"/>`+"\n", se.color, strings.Join(pts, " "))
		for _, s := range steps {
			fill := se.color
			if !s.Pass {
				fill = "white"
			}
			fmt.Fprintf(&b, `<circle cx="%.1f" cy="%.1f" r="4" fill="%s" stroke="%s"/>`+"\n", x(s.Achieved), y(se.val(s).Seconds()*1000), fill, se.color)
		}
		fmt.Fprintf(&b, `<rect x="%d" y="%d" width="12" height="12" fill="%s"/><text x="%d" y="%d">%s</text>`+"\n",
			L+12, T+6+i*18, se.color, L+30, T+16+i*18, xmlEscape(se.name))
	}
	fmt.Fprintf(&b, `<text x="%d" y="%d" fill="#555">hollow points: failed steps</text>`+"\n", L+12, T+16+2*18)
	b.WriteString("</svg>\n")
	_, err := io.WriteString(w, b.String())
	return err
}

// niceCeil rounds v up to 5 × a step of 1, 2, 2.5 or 5 times a power of
// ten, so that the five axis ticks are round numbers.
func niceCeil(v float64) float64 {
	if v <= 0 {
		return 1
	}
	raw := v / 5
	mag := math.Pow(10, math.Floor(math.Log10(raw)))
	for _, m := range []float64{1, 2, 2.5, 5, 10} {
		if m*mag >= raw {
			return 5 * m * mag
		}
	}
	return 50 * mag
}

func xmlEscape(s string) string {
	return strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;", `"`, "&quot;").Replace(s)
}
