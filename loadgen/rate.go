package loadgen

import (
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"

	vegeta "github.com/tsenart/vegeta/v12/lib"
)

// MaxRate bounds a requested rate (requests per second).
const MaxRate = 1_000_000

// Rate is a request rate: constant ("500/s", "500/1s", "30/100ms", "500")
// or a linear ramp over the attack's duration ("100/s..2000/s"). It
// implements pflag.Value.
type Rate struct {
	Start vegeta.Rate
	End   vegeta.Rate // zero unless a ramp
}

// ParseRate reads a Rate.
func ParseRate(s string) (Rate, error) {
	var r Rate
	a, b, ramp := strings.Cut(s, "..")
	var err error
	if r.Start, err = parseOneRate(a); err != nil {
		return r, err
	}
	if ramp {
		if r.End, err = parseOneRate(b); err != nil {
			return r, err
		}
	}
	return r, nil
}

func parseOneRate(s string) (vegeta.Rate, error) {
	s = strings.TrimSpace(s)
	f, per, ok := strings.Cut(s, "/")
	n, err := strconv.Atoi(f)
	if err != nil || n <= 0 {
		return vegeta.Rate{}, fmt.Errorf("rate %q: want a positive count per period, e.g. 500/s, 50/100ms, or a ramp 100/s..2000/s", s)
	}
	p := time.Second
	if ok {
		if per != "" && (per[0] < '0' || per[0] > '9') {
			per = "1" + per
		}
		if p, err = time.ParseDuration(per); err != nil || p <= 0 {
			return vegeta.Rate{}, fmt.Errorf("rate %q: bad period %q", s, per)
		}
	}
	r := vegeta.Rate{Freq: n, Per: p}
	if hz(r) > MaxRate {
		return vegeta.Rate{}, fmt.Errorf("rate %q is over %d/s", s, MaxRate)
	}
	if hz(r) < 0.01 {
		return vegeta.Rate{}, fmt.Errorf("rate %q is below one request per 100s", s)
	}
	return r, nil
}

func hz(r vegeta.Rate) float64 { return float64(r.Freq) / r.Per.Seconds() }

// RatePerSecond returns a constant Rate of n requests per second.
func RatePerSecond(n float64) Rate {
	// Express fractional rates exactly enough with a 1ms-granular period.
	if n >= 1 && n == math.Trunc(n) {
		return Rate{Start: vegeta.Rate{Freq: int(n), Per: time.Second}}
	}
	return Rate{Start: vegeta.Rate{Freq: int(math.Round(n * 1000)), Per: 1000 * time.Second}}
}

// Ramp reports whether the rate is a linear ramp.
func (r Rate) Ramp() bool { return r.End.Freq > 0 }

// Pacer returns the Vegeta pacer for an attack lasting d.
func (r Rate) Pacer(d time.Duration) vegeta.Pacer {
	if !r.Ramp() || d <= 0 {
		return r.Start
	}
	return vegeta.LinearPacer{StartAt: r.Start, Slope: (hz(r.End) - hz(r.Start)) / d.Seconds()}
}

// Mean is the average requested rate (requests per second).
func (r Rate) Mean() float64 {
	if r.Ramp() {
		return (hz(r.Start) + hz(r.End)) / 2
	}
	return hz(r.Start)
}

// String formats the rate as ParseRate reads it.
func (r Rate) String() string {
	if r.Start.Freq == 0 {
		return ""
	}
	s := fmtRate(r.Start)
	if r.Ramp() {
		s += ".." + fmtRate(r.End)
	}
	return s
}

func fmtRate(r vegeta.Rate) string {
	if r.Per == time.Second {
		return strconv.Itoa(r.Freq) + "/s"
	}
	return strconv.Itoa(r.Freq) + "/" + r.Per.String()
}

// Set implements pflag.Value.
func (r *Rate) Set(s string) error {
	v, err := ParseRate(s)
	if err != nil {
		return err
	}
	*r = v
	return nil
}

// Type implements pflag.Value.
func (r *Rate) Type() string { return "rate" }

// SLO is a latency objective on one quantile, e.g. "p99=10ms". It
// implements pflag.Value.
type SLO struct {
	Name     string  // "p99"
	Quantile float64 // 0.99
	Max      time.Duration
}

// ParseSLO reads "pNN=duration" (pNN from p1 to p99.99, or "max").
func ParseSLO(s string) (SLO, error) {
	name, d, ok := strings.Cut(strings.TrimSpace(s), "=")
	if !ok {
		return SLO{}, fmt.Errorf("SLO %q: want pNN=duration or max=duration, e.g. p99=10ms", s)
	}
	var q float64
	if name == "max" {
		q = 1
	} else {
		num, ok := strings.CutPrefix(name, "p")
		v, err := strconv.ParseFloat(num, 64)
		if !ok || err != nil || v <= 0 || v >= 100 {
			return SLO{}, fmt.Errorf("SLO quantile %q: want pNN with 0 < NN < 100 (p50, p95, p99, p99.9, ...) or max", name)
		}
		q = v / 100
	}
	max, err := time.ParseDuration(d)
	if err != nil || max <= 0 {
		return SLO{}, fmt.Errorf("SLO latency %q: want a positive duration, e.g. 10ms", d)
	}
	return SLO{Name: name, Quantile: q, Max: max}, nil
}

// String formats the SLO as ParseSLO reads it.
func (s SLO) String() string {
	if s.Name == "" {
		return ""
	}
	return s.Name + "=" + s.Max.String()
}

// Set implements pflag.Value.
func (s *SLO) Set(v string) error {
	x, err := ParseSLO(v)
	if err != nil {
		return err
	}
	*s = x
	return nil
}

// Type implements pflag.Value.
func (s *SLO) Type() string { return "slo" }
