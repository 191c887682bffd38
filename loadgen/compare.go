package loadgen

import (
	"cmp"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"slices"
	"strings"
	"text/tabwriter"
	"time"
)

// Change is one compared figure of two summaries.
type Change struct {
	Metric     string  `json:"metric"`
	Old        string  `json:"old"`
	New        string  `json:"new"`
	Delta      float64 `json:"delta"` // new/old - 1; NaN when not a ratio
	Gated      bool    `json:"gated"` // false: shown, never a regression
	Regression bool    `json:"regression"`
	Note       string  `json:"note,omitempty"`
}

// Comparison is the outcome of CompareSummaries.
type Comparison struct {
	Kind      string   `json:"kind"` // "attack" or "capacity"
	Threshold float64  `json:"threshold"`
	Changes   []Change `json:"changes"`
	Regressed bool     `json:"regressed"`
}

// summaryKind tells an attack summary (summary.json, also a merged one)
// from a capacity summary (capacity.json) by their members.
func summaryKind(b []byte) (string, error) {
	var probe map[string]json.RawMessage
	if err := json.Unmarshal(b, &probe); err != nil {
		return "", fmt.Errorf("not a JSON summary: %w", err)
	}
	if _, ok := probe["capacity"]; ok {
		if _, ok := probe["steps"]; ok {
			return "capacity", nil
		}
	}
	if _, ok := probe["requests"]; ok {
		if _, ok := probe["latency"]; ok {
			return "attack", nil
		}
	}
	return "", errors.New("neither an attack summary (summary.json) nor a capacity summary (capacity.json)")
}

// CompareSummaries compares two summaries of the same kind written by
// loadgen attack, report or capacity: OLD (e.g. the last release's) and
// NEW. A regression is a throughput or capacity lower by more than
// threshold, a latency quantile higher by more than threshold, a larger
// share of wrong verdicts or failed requests, or a gate that fails in NEW
// and did not in OLD.
func CompareSummaries(oldJSON, newJSON []byte, threshold float64) (*Comparison, error) {
	ko, err := summaryKind(oldJSON)
	if err != nil {
		return nil, fmt.Errorf("OLD: %w", err)
	}
	kn, err := summaryKind(newJSON)
	if err != nil {
		return nil, fmt.Errorf("NEW: %w", err)
	}
	if ko != kn {
		return nil, fmt.Errorf("OLD is a %s summary and NEW a %s summary: compare like with like", ko, kn)
	}
	c := &Comparison{Kind: ko, Threshold: threshold}
	if ko == "capacity" {
		var o, n CapacityResult
		if err := json.Unmarshal(oldJSON, &o); err != nil {
			return nil, fmt.Errorf("OLD: %w", err)
		}
		if err := json.Unmarshal(newJSON, &n); err != nil {
			return nil, fmt.Errorf("NEW: %w", err)
		}
		if o.SLO != n.SLO {
			c.add(Change{Metric: "slo", Old: o.SLO, New: n.SLO, Delta: math.NaN(), Note: "different SLOs: the capacities are not comparable"})
		}
		c.higherBetter("capacity", o.Capacity, n.Capacity, "/s")
		c.gates(o.Gates, n.Gates)
		return c, nil
	}
	var o, n Report
	if err := json.Unmarshal(oldJSON, &o); err != nil {
		return nil, fmt.Errorf("OLD: %w", err)
	}
	if err := json.Unmarshal(newJSON, &n); err != nil {
		return nil, fmt.Errorf("NEW: %w", err)
	}
	if o.RequestedRate > 0 && math.Abs(n.RequestedRate/o.RequestedRate-1) > 0.01 {
		c.add(Change{Metric: "requested rate", Old: fmt.Sprintf("%.1f/s", o.RequestedRate), New: fmt.Sprintf("%.1f/s", n.RequestedRate),
			Delta: n.RequestedRate/o.RequestedRate - 1, Note: "different requested rates: throughput and latency are not comparable"})
	}
	c.higherBetter("throughput", o.Throughput, n.Throughput, "/s")
	for _, q := range []struct {
		name     string
		old, new time.Duration
	}{{"p50", o.Latency.P50, n.Latency.P50}, {"p90", o.Latency.P90, n.Latency.P90},
		{"p95", o.Latency.P95, n.Latency.P95}, {"p99", o.Latency.P99, n.Latency.P99}} {
		c.lowerBetter("latency "+q.name, q.old, q.new)
	}
	// Other quantiles both runs recorded for their SLOs, in order (max is
	// shown below, not gated: it is one request).
	var extra []string
	for name := range o.Quantiles {
		if _, ok := n.Quantiles[name]; ok && !slices.Contains([]string{"p50", "p90", "p95", "p99", "max"}, name) {
			extra = append(extra, name)
		}
	}
	slices.SortFunc(extra, func(a, b string) int { return cmp.Compare(quantileOf(a), quantileOf(b)) })
	for _, name := range extra {
		c.lowerBetter("latency "+name, o.Quantiles[name], n.Quantiles[name])
	}
	c.add(Change{Metric: "latency max", Old: fmtDur(o.Latency.Max), New: fmtDur(n.Latency.Max),
		Delta: ratio(float64(n.Latency.Max), float64(o.Latency.Max)) - 1, Note: "not gated: one request"})
	ob, nb := failedShare(&o), failedShare(&n)
	c.add(Change{Metric: "wrong verdicts + errors", Gated: true, Delta: math.NaN(),
		Old: fmt.Sprintf("%d of %d", o.Mismatches+o.Errors, o.Requests), New: fmt.Sprintf("%d of %d", n.Mismatches+n.Errors, n.Requests),
		Regression: nb > ob})
	c.gates(o.Gates, n.Gates)
	return c, nil
}

// quantileOf reads a quantile name back ("p99.9" -> 0.999, "max" -> 1).
func quantileOf(name string) float64 {
	s, err := ParseSLO(name + "=1s")
	if err != nil {
		return 2
	}
	return s.Quantile
}

func failedShare(r *Report) float64 {
	if r.Requests == 0 {
		return 1
	}
	return float64(r.Mismatches+r.Errors) / float64(r.Requests)
}

func ratio(a, b float64) float64 {
	if b == 0 {
		if a == 0 {
			return 1
		}
		return math.Inf(1)
	}
	return a / b
}

func (c *Comparison) add(ch Change) {
	c.Changes = append(c.Changes, ch)
	c.Regressed = c.Regressed || ch.Regression
}

func (c *Comparison) higherBetter(name string, o, n float64, unit string) {
	d := ratio(n, o) - 1
	c.add(Change{Metric: name, Old: fmt.Sprintf("%.1f%s", o, unit), New: fmt.Sprintf("%.1f%s", n, unit),
		Delta: d, Gated: true, Regression: d < -c.Threshold})
}

func (c *Comparison) lowerBetter(name string, o, n time.Duration) {
	d := ratio(float64(n), float64(o)) - 1
	c.add(Change{Metric: name, Old: fmtDur(o), New: fmtDur(n), Delta: d, Gated: true, Regression: d > c.Threshold})
}

// gates: a gate that fails in NEW but did not fail in OLD (passed, or was
// not there) is a regression; one that fails in both is reported, not
// counted.
func (c *Comparison) gates(o, n []Gate) {
	for _, ng := range n {
		ch := Change{Metric: "gate " + ng.Name, New: passWord(ng.Pass) + " (" + ng.Got + ")", Old: "-", Delta: math.NaN(), Gated: true}
		for _, og := range o {
			if og.Name == ng.Name {
				ch.Old = passWord(og.Pass) + " (" + og.Got + ")"
				ch.Regression = og.Pass && !ng.Pass
				if !og.Pass && !ng.Pass {
					ch.Note = "failing in both"
				}
			}
		}
		if ch.Old == "-" && !ng.Pass {
			ch.Regression = true
		}
		c.add(ch)
	}
}

func passWord(p bool) string {
	if p {
		return "pass"
	}
	return "FAIL"
}

// WriteText writes the comparison as a table and a last line:
// "compare: OK ..." or "compare: REGRESSION ...".
func (c *Comparison) WriteText(w io.Writer) error {
	var b strings.Builder
	tw := tabwriter.NewWriter(&b, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "metric\told\tnew\tchange\t")
	n := 0
	for _, ch := range c.Changes {
		delta := ""
		if !math.IsNaN(ch.Delta) && !math.IsInf(ch.Delta, 0) {
			delta = fmt.Sprintf("%+.1f%%", 100*ch.Delta)
		}
		mark := ""
		switch {
		case ch.Regression:
			mark = "REGRESSION"
			n++
		case ch.Note != "":
			mark = ch.Note
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", ch.Metric, ch.Old, ch.New, delta, mark)
	}
	tw.Flush()
	th := fmt.Sprintf("%g%%", 100*c.Threshold)
	if c.Regressed {
		fmt.Fprintf(&b, "compare: REGRESSION: %d of %d figures worse (threshold %s)\n", n, len(c.Changes), th)
	} else {
		fmt.Fprintf(&b, "compare: OK: nothing worse by more than %s, no gate newly failing\n", th)
	}
	_, err := io.WriteString(w, b.String())
	return err
}
