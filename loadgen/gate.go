package loadgen

import (
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"
)

// SLOs is a list of latency objectives, all of which an attack must meet,
// e.g. "p50=2ms,p99=20ms". As a pflag.Value it may be given several times;
// each use adds to the list.
type SLOs []SLO

// ParseSLOs reads a comma-separated list of SLOs.
func ParseSLOs(s string) (SLOs, error) {
	var l SLOs
	for _, part := range strings.Split(s, ",") {
		x, err := ParseSLO(part)
		if err != nil {
			return nil, err
		}
		l = append(l, x)
	}
	return l, nil
}

// String formats the list as ParseSLOs reads it.
func (l *SLOs) String() string {
	parts := make([]string, len(*l))
	for i, s := range *l {
		parts[i] = s.String()
	}
	return strings.Join(parts, ",")
}

// Set implements pflag.Value: it adds to the list.
func (l *SLOs) Set(v string) error {
	x, err := ParseSLOs(v)
	if err != nil {
		return err
	}
	*l = append(*l, x...)
	return nil
}

// Type implements pflag.Value.
func (l *SLOs) Type() string { return "slo" }

// Quantiles returns the quantiles the SLOs are on.
func (l SLOs) Quantiles() []float64 {
	q := make([]float64, len(l))
	for i, s := range l {
		q[i] = s.Quantile
	}
	return q
}

// QuantileName names a quantile as an SLO does: 0.99 -> "p99", 0.999 ->
// "p99.9", 1 -> "max".
func QuantileName(q float64) string {
	if q >= 1 {
		return "max"
	}
	return "p" + strconv.FormatFloat(math.Round(q*1e6)/1e4, 'f', -1, 64)
}

// Gate is one pass/fail check of a run: a latency objective, the verdicts,
// or a required capacity.
type Gate struct {
	Name string `json:"name"` // "p99 <= 20ms", "verdicts", "capacity >= 20000/s"
	Got  string `json:"got"`  // what the run measured
	Pass bool   `json:"pass"`
}

// LatencyAt returns the latency at quantile q: the exact quantile recorded
// for it (Report.Quantiles) if any, else the next higher one of Latency.
func (r *Report) LatencyAt(q float64) time.Duration {
	if d, ok := r.Quantiles[QuantileName(q)]; ok {
		return d
	}
	return r.Latency.Quantile(q)
}

// Check evaluates the report's gates: every verdict as expected and no
// request failed, then each SLO. It sets r.Gates and r.Pass and returns
// r.Pass.
func (r *Report) Check(slos SLOs) bool {
	r.Gates = r.Gates[:0]
	r.Gates = append(r.Gates, Gate{Name: "verdicts",
		Got:  fmt.Sprintf("%d wrong, %d errors of %d", r.Mismatches, r.Errors, r.Requests),
		Pass: r.OK()})
	for _, s := range slos {
		got := r.LatencyAt(s.Quantile)
		r.Gates = append(r.Gates, Gate{Name: s.Name + " <= " + s.Max.String(), Got: fmtDur(got), Pass: got <= s.Max})
	}
	r.Pass = true
	for _, g := range r.Gates {
		r.Pass = r.Pass && g.Pass
	}
	return r.Pass
}

// WriteGates writes one line per gate and the outcome.
func WriteGates(b *strings.Builder, gates []Gate, pass bool) {
	for _, g := range gates {
		word := "PASS"
		if !g.Pass {
			word = "FAIL"
		}
		fmt.Fprintf(b, "gate        %-28s %-40s %s\n", g.Name, g.Got, word)
	}
	if pass {
		b.WriteString("result      PASS: every gate passed\n")
	} else {
		b.WriteString("result      FAIL: a gate failed\n")
	}
}

// ParseRequiredRate reads a required throughput, "20000/s" or "20000".
func ParseRequiredRate(s string) (float64, error) {
	r, err := ParseRate(s)
	if err != nil {
		return 0, err
	}
	if r.Ramp() {
		return 0, errors.New("a required rate is one rate, e.g. 20000/s, not a ramp")
	}
	return r.Mean(), nil
}

// Require adds the gate "capacity >= rate" to the result and returns
// whether the found capacity meets it.
func (r *CapacityResult) Require(rate float64) bool {
	r.Required = rate
	r.Gates = append(r.Gates, Gate{Name: "capacity >= " + fmtReqRate(rate),
		Got: fmtReqRate(r.Capacity), Pass: r.Capacity >= rate})
	r.Pass = true
	for _, g := range r.Gates {
		r.Pass = r.Pass && g.Pass
	}
	return r.Pass
}

func fmtReqRate(r float64) string { return strconv.FormatFloat(math.Round(r), 'f', -1, 64) + "/s" }
