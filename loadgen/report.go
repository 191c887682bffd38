package loadgen

import (
	"encoding/json"
	"fmt"
	"io"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	vegeta "github.com/tsenart/vegeta/v12/lib"
)

// Report is the outcome of an attack.
type Report struct {
	Name          string         `json:"name"`
	Rate          string         `json:"rate"`           // as requested, e.g. "500/s"
	RequestedRate float64        `json:"requested_rate"` // mean, per second
	Duration      time.Duration  `json:"duration_ns"`    // wall time of the sending
	Connections   int            `json:"connections"`
	Workers       int            `json:"workers"` // at the end
	Requests      uint64         `json:"requests"`
	SentRate      float64        `json:"sent_rate"`  // requests per second
	Throughput    float64        `json:"throughput"` // verdicts as expected per second
	Latency       Latency        `json:"latency"`
	Expected      uint64         `json:"as_expected"`
	Success       float64        `json:"success_ratio"` // as expected / requests
	Mismatches    uint64         `json:"mismatches"`
	Errors        uint64         `json:"transport_errors"`
	Classes       []ClassCount   `json:"classes"`
	Samples       []Mismatch     `json:"mismatch_samples,omitempty"`
	CPU           CPU            `json:"generator_cpu"`
	Warnings      []string       `json:"warnings,omitempty"`
	StatusCodes   map[string]int `json:"status_codes"`
	// Quantiles holds the latency at each SLO's quantile, by its name
	// ("p99.9"), estimated from every request (Vegeta's t-digest).
	Quantiles map[string]time.Duration `json:"quantiles_ns,omitempty"`
	// Gates are the run's pass/fail checks (Check): the verdicts, then
	// each SLO; Pass is set when all passed.
	Gates []Gate `json:"gates"`
	Pass  bool   `json:"pass"`
	// Shard is "i/n" when this generator sent the i-th of n shares of the
	// targets (AttackConfig.Shard); Generators is how many generators a
	// merged report (Merge) covers.
	Shard      string `json:"shard,omitempty"`
	Generators int    `json:"generators,omitempty"`
}

// Latency holds the latency quantiles of an attack.
type Latency struct {
	P50  time.Duration `json:"p50_ns"`
	P90  time.Duration `json:"p90_ns"`
	P95  time.Duration `json:"p95_ns"`
	P99  time.Duration `json:"p99_ns"`
	Max  time.Duration `json:"max_ns"`
	Mean time.Duration `json:"mean_ns"`
}

// Quantile returns the latency at q (0.5, 0.9, 0.95, 0.99 or 1 = max); an
// other quantile gets the next higher one held.
func (l Latency) Quantile(q float64) time.Duration {
	switch {
	case q <= 0.5:
		return l.P50
	case q <= 0.9:
		return l.P90
	case q <= 0.95:
		return l.P95
	case q <= 0.99:
		return l.P99
	}
	return l.Max
}

// ClassCount is the per-class tally of an attack.
type ClassCount struct {
	Class      string `json:"class"`
	Sent       uint64 `json:"sent"`
	Mismatches uint64 `json:"mismatches"`
}

// CPU is the generator's own CPU use (this process, from getrusage).
type CPU struct {
	Total      time.Duration `json:"total_ns"`
	PerRequest time.Duration `json:"per_request_ns"`
	Cores      int           `json:"cores"`
	Share      float64       `json:"share"` // of Cores × wall time
	Saturated  bool          `json:"saturated"`
}

// OK reports whether every response carried its expected verdict and no
// request failed.
func (r *Report) OK() bool { return r.Requests > 0 && r.Mismatches == 0 && r.Errors == 0 }

// saturation thresholds: the generator is the bottleneck when it used
// this share of its cores, or could not keep the requested rate.
const (
	cpuSaturated = 0.85
	rateBehind   = 0.95
)

func (r *run) report(m *vegeta.Metrics, hits uint64, wall, cpu time.Duration) *Report {
	rep := &Report{
		Name: r.cfg.Name, Rate: r.cfg.Rate.String(), RequestedRate: r.cfg.Rate.Mean(),
		Duration: wall, Connections: r.cfg.Connections, Requests: m.Requests,
		Latency: Latency{P50: m.Latencies.P50, P90: m.Latencies.P90, P95: m.Latencies.P95,
			P99: m.Latencies.P99, Max: m.Latencies.Max, Mean: m.Latencies.Mean},
		Samples: r.samples, StatusCodes: m.StatusCodes, Shard: r.cfg.Shard.String(),
	}
	var sent, bad [NumClasses]uint64
	for _, w := range r.workers {
		rep.Mismatches += w.mismatches.Load()
		rep.Errors += w.errors.Load()
		for c := range NumClasses {
			sent[c] += w.sent[c].Load()
			bad[c] += w.bad[c].Load()
		}
	}
	rep.Workers = len(r.workers)
	for c := range NumClasses {
		if sent[c] > 0 {
			rep.Classes = append(rep.Classes, ClassCount{Class: Class(c).String(), Sent: sent[c], Mismatches: bad[c]})
		}
	}
	rep.Expected = rep.Requests - rep.Mismatches - rep.Errors
	if rep.Requests > 0 {
		rep.Success = float64(rep.Expected) / float64(rep.Requests)
		rep.CPU.PerRequest = cpu / time.Duration(rep.Requests)
	}
	if s := wall.Seconds(); s > 0 {
		rep.SentRate = float64(hits) / s
		// Over the same window as SentRate, so that it can never exceed it.
		if rep.Requests > 0 {
			rep.Throughput = rep.SentRate * float64(rep.Expected) / float64(rep.Requests)
		}
	}
	rep.CPU.Total, rep.CPU.Cores = cpu, cores()
	if wall > 0 {
		rep.CPU.Share = cpu.Seconds() / (wall.Seconds() * float64(rep.CPU.Cores))
	}
	rep.Warnings = r.warnings(rep)
	if len(r.cfg.SLOs) > 0 {
		rep.Quantiles = map[string]time.Duration{}
		for _, q := range r.cfg.SLOs.Quantiles() {
			rep.Quantiles[QuantileName(q)] = m.Latencies.Quantile(q)
		}
	}
	rep.Check(r.cfg.SLOs)
	return rep
}

func (r *run) warnings(rep *Report) []string {
	var w []string
	behind := rep.SentRate < rateBehind*rep.RequestedRate
	if rep.CPU.Share >= cpuSaturated {
		rep.CPU.Saturated = true
		w = append(w, fmt.Sprintf("the generator used %.0f%% of its %d cores: it, not the server, was the bottleneck; these figures are a lower bound on the server's capacity (run the generator on other cores or another machine)",
			100*rep.CPU.Share, rep.CPU.Cores))
	}
	if behind {
		why := "the server answered too slowly for the connections and workers given"
		if rep.CPU.Saturated {
			why = "the generator ran out of CPU"
		} else if rep.Workers >= r.cfg.MaxWorkers {
			why = fmt.Sprintf("all %d workers were busy: the server answered too slowly (or raise --max-workers/--connections)", rep.Workers)
		}
		w = append(w, fmt.Sprintf("sent %.1f req/s, below the requested %.1f req/s: %s", rep.SentRate, rep.RequestedRate, why))
	}
	return w
}

func fmtDur(d time.Duration) string {
	switch {
	case d >= 10*time.Millisecond:
		return d.Round(100 * time.Microsecond).String()
	case d >= time.Millisecond:
		return d.Round(10 * time.Microsecond).String()
	}
	return d.Round(time.Microsecond).String()
}

// WriteText writes the human report.
func (r *Report) WriteText(w io.Writer) error {
	var b strings.Builder
	fmt.Fprintf(&b, "attack %s: %s at %s (mean %.1f req/s requested), %d connections, %d workers\n",
		r.Name, r.Duration.Round(time.Millisecond), r.Rate, r.RequestedRate, r.Connections, r.Workers)
	if r.Shard != "" {
		fmt.Fprintf(&b, "shard       %s: this generator's share of the targets, at its share of the rate\n", r.Shard)
	}
	if r.Generators > 0 {
		fmt.Fprintf(&b, "generators  %d, merged: quantiles over all their requests\n", r.Generators)
	}
	fmt.Fprintf(&b, "requests    %d, %.1f req/s sent, %.1f req/s answered as expected\n", r.Requests, r.SentRate, r.Throughput)
	l := r.Latency
	fmt.Fprintf(&b, "latency     p50 %s  p90 %s  p95 %s  p99 %s  max %s  mean %s\n",
		fmtDur(l.P50), fmtDur(l.P90), fmtDur(l.P95), fmtDur(l.P99), fmtDur(l.Max), fmtDur(l.Mean))
	if len(r.Quantiles) > 0 {
		names := make([]string, 0, len(r.Quantiles))
		for n := range r.Quantiles {
			names = append(names, n)
		}
		sort.Strings(names)
		b.WriteString("quantiles  ")
		for _, n := range names {
			fmt.Fprintf(&b, " %s %s", n, fmtDur(r.Quantiles[n]))
		}
		b.WriteString("\n")
	}
	fmt.Fprintf(&b, "verdicts    %d as expected (%.2f%%), %d mismatches, %d transport errors\n",
		r.Expected, 100*r.Success, r.Mismatches, r.Errors)
	if r.Generators > 0 {
		// Each generator counts its own cores: generators sharing a
		// machine count its cores several times.
		fmt.Fprintf(&b, "generators  CPU %s = %s per request, %.1f%% of the %d cores they counted\n",
			r.CPU.Total.Round(time.Millisecond), fmtDur(r.CPU.PerRequest), 100*r.CPU.Share, r.CPU.Cores)
	} else {
		fmt.Fprintf(&b, "generator   CPU %s = %s per request, %.1f%% of %d cores\n",
			r.CPU.Total.Round(time.Millisecond), fmtDur(r.CPU.PerRequest), 100*r.CPU.Share, r.CPU.Cores)
	}
	tw := tabwriter.NewWriter(&b, 0, 0, 2, ' ', 0)
	fmt.Fprintf(tw, "class\tsent\tmismatches\n")
	for _, c := range r.Classes {
		fmt.Fprintf(tw, "%s\t%d\t%d\n", c.Class, c.Sent, c.Mismatches)
	}
	tw.Flush()
	for _, s := range r.Warnings {
		fmt.Fprintf(&b, "WARNING: %s\n", s)
	}
	if len(r.Samples) > 0 {
		fmt.Fprintf(&b, "first %d of %d mismatches/errors:\n", len(r.Samples), r.Mismatches+r.Errors)
		for _, s := range r.Samples {
			if s.Error != "" {
				fmt.Fprintf(&b, "  target line %d (expect %s): transport error: %s\n", s.Line, s.Expect, s.Error)
				continue
			}
			fmt.Fprintf(&b, "  target line %d: expected %s, got HTTP %d %s\n", s.Line, s.Expect, s.Status, s.Got)
			if s.WWWAuthenticate != "" {
				fmt.Fprintf(&b, "    WWW-Authenticate: %s\n", s.WWWAuthenticate)
			}
			fmt.Fprintf(&b, "    body: %s\n", strings.TrimSpace(s.Body))
		}
	}
	switch {
	case len(r.Gates) > 1:
		WriteGates(&b, r.Gates, r.Pass)
	case r.OK():
		b.WriteString("result      OK: every verdict as expected\n")
	default:
		b.WriteString("result      FAIL: some verdicts were not as expected or requests failed\n")
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// WriteJSON writes the report as indented JSON.
func (r *Report) WriteJSON(w io.Writer) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(r)
}
