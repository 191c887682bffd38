package loadgen

import (
	"bytes"
	"encoding/json"
	"math"
	"strings"
	"testing"
	"time"
)

func TestParseSLOs(t *testing.T) {
	var l SLOs
	for _, v := range []string{"p99=20ms", "p50=2ms,p99.9=50ms", "max=1s"} {
		if err := l.Set(v); err != nil {
			t.Fatal(err)
		}
	}
	if got := l.String(); got != "p99=20ms,p50=2ms,p99.9=50ms,max=1s" {
		t.Errorf("String() = %q", got)
	}
	var names []string
	for _, q := range l.Quantiles() {
		names = append(names, QuantileName(q))
	}
	if got := strings.Join(names, " "); got != "p99 p50 p99.9 max" {
		t.Errorf("quantile names %q", got)
	}
	for _, bad := range []string{"p99", "p100=1ms", "p99=-1ms", "p99=20ms,", "q50=1ms"} {
		if err := l.Set(bad); err == nil {
			t.Errorf("Set(%q) accepted", bad)
		}
	}
}

func TestReportCheckSLOs(t *testing.T) {
	r := sampleReport()
	r.Mismatches, r.Errors = 0, 0
	r.Quantiles = map[string]time.Duration{"p99.9": 9 * time.Millisecond}
	for _, tc := range []struct {
		slo  string
		pass bool
		got  string
	}{
		{"p99=2ms", true, "1.23ms"},
		{"p99=1ms", false, "1.23ms"},
		{"p50=500us,p99=2ms", true, "1.23ms"},
		{"p50=400us,p99=2ms", false, "412µs"},
		{"p99.9=10ms", true, "9ms"},
		{"p99.9=8ms", false, "9ms"},
		{"max=10ms", false, "15.7ms"},
	} {
		slos, err := ParseSLOs(tc.slo)
		if err != nil {
			t.Fatal(err)
		}
		if got := r.Check(slos); got != tc.pass || r.Pass != tc.pass {
			t.Errorf("%s: Check = %v, want %v; gates %+v", tc.slo, got, tc.pass, r.Gates)
		}
		if len(r.Gates) != 1+len(slos) || r.Gates[0].Name != "verdicts" || !r.Gates[0].Pass {
			t.Errorf("%s: gates %+v", tc.slo, r.Gates)
		}
		found := false
		for _, g := range r.Gates[1:] {
			found = found || (g.Got == tc.got && g.Pass == tc.pass)
		}
		if !found && !tc.pass {
			t.Errorf("%s: no failing gate showing %s: %+v", tc.slo, tc.got, r.Gates)
		}
	}
	// Wrong verdicts fail the gate whatever the latency.
	r.Mismatches = 1
	if r.Check(nil) || r.Gates[0].Pass {
		t.Errorf("a mismatch passed: %+v", r.Gates)
	}
	var b bytes.Buffer
	r.Check(SLOs{{Name: "p99", Quantile: 0.99, Max: 2 * time.Millisecond}})
	r.WriteText(&b)
	for _, want := range []string{"gate        verdicts", "FAIL\n", "gate        p99 <= 2ms                   1.23ms", "result      FAIL: a gate failed", "quantiles   p99.9 9ms"} {
		if !strings.Contains(b.String(), want) {
			t.Errorf("text lacks %q:\n%s", want, b.String())
		}
	}
}

func TestCapacityRequire(t *testing.T) {
	for _, tc := range []struct {
		capacity, require float64
		pass              bool
	}{{25000, 20000, true}, {20000, 20000, true}, {19999, 20000, false}, {0, 1, false}} {
		r := &CapacityResult{Capacity: tc.capacity, Pass: true}
		if got := r.Require(tc.require); got != tc.pass || len(r.Gates) != 1 || r.Required != tc.require {
			t.Errorf("capacity %v require %v: %v %+v", tc.capacity, tc.require, got, r)
		}
	}
	if r, err := ParseRequiredRate("20000/s"); err != nil || r != 20000 {
		t.Errorf("ParseRequiredRate: %v %v", r, err)
	}
	for _, bad := range []string{"fast", "0/s", "100/s..200/s", "-5"} {
		if _, err := ParseRequiredRate(bad); err == nil {
			t.Errorf("ParseRequiredRate(%q) accepted", bad)
		}
	}
}

func TestShard(t *testing.T) {
	for _, bad := range []string{"0/3", "4/3", "1/0", "a/b", "3", "1/2000", "-1/3"} {
		if _, err := ParseShard(bad); err == nil {
			t.Errorf("ParseShard(%q) accepted", bad)
		}
	}
	targets := make([]Target, 10)
	for i := range targets {
		targets[i].Line = i + 1
	}
	seen := map[int]int{}
	for i := 1; i <= 3; i++ {
		s, err := ParseShard(strings.Repeat("", 0) + string(rune('0'+i)) + "/3")
		if err != nil || s.String() != string(rune('0'+i))+"/3" {
			t.Fatalf("ParseShard: %v %v", s, err)
		}
		share := s.Targets(targets)
		if want := []int{4, 3, 3}[i-1]; len(share) != want {
			t.Errorf("shard %s: %d targets, want %d", s, len(share), want)
		}
		for _, tg := range share {
			seen[tg.Line]++
			if (tg.Line-1)%3 != i-1 {
				t.Errorf("shard %s got target line %d", s, tg.Line)
			}
		}
		for _, rate := range []string{"1000/s", "500/s..2000/s", "30/100ms"} {
			r, _ := ParseRate(rate)
			if got, want := s.Rate(r).Mean(), r.Mean()/3; math.Abs(got-want) > 1e-9 {
				t.Errorf("shard %s of %s: %v/s, want %v/s", s, rate, got, want)
			}
		}
	}
	for line := 1; line <= 10; line++ {
		if seen[line] != 1 {
			t.Errorf("target %d sent by %d shards, want 1", line, seen[line])
		}
	}
	if got := (Shard{}).Targets(targets); len(got) != 10 {
		t.Errorf("the zero shard dropped targets")
	}
}

func TestShardGate(t *testing.T) {
	rep := func(shards ...string) []*Report {
		var out []*Report
		for _, s := range shards {
			out = append(out, &Report{Shard: s})
		}
		return out
	}
	for _, tc := range []struct {
		shards []string
		pass   bool
		got    string
	}{
		{[]string{"1/3", "2/3", "3/3"}, true, "3 of 3"},
		{[]string{"3/3", "1/3"}, false, "2/3 missing"},
		{[]string{"1/2", "1/2", "2/2"}, false, "1/2 given 2 times"},
		{[]string{"1/2", "2/3"}, false, "another split"},
		{[]string{"1/2", "2/2", ""}, false, "1 unsharded"},
	} {
		g, ok := shardGate(rep(tc.shards...))
		if !ok || g.Pass != tc.pass || !strings.Contains(g.Got, tc.got) {
			t.Errorf("%q: %+v, want pass %v with %q", tc.shards, g, tc.pass, tc.got)
		}
	}
	if _, ok := shardGate(rep("", "")); ok {
		t.Error("a shard gate for unsharded generators")
	}
}

// summaryJSON is sampleReport with its gates checked against slos, as JSON.
func summaryJSON(t *testing.T, edit func(*Report), slos string) []byte {
	t.Helper()
	r := sampleReport()
	r.Mismatches, r.Expected, r.Warnings, r.Samples = 0, r.Requests, nil, nil
	edit(r)
	s, _ := ParseSLOs(slos)
	r.Check(s)
	b, err := json.Marshal(r)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestCompareSummariesGolden(t *testing.T) {
	old := summaryJSON(t, func(r *Report) {
		r.Quantiles = map[string]time.Duration{"p9": time.Millisecond, "p99.9": 20 * time.Millisecond, "max": 40 * time.Millisecond}
	}, "p99=2ms")
	for _, tc := range []struct {
		name      string
		edit      func(*Report)
		threshold float64
		regressed bool
	}{
		{"compare-same", func(*Report) {}, 0.1, false},
		{"compare-within", func(r *Report) { r.Throughput *= 0.95; r.Latency.P99 = r.Latency.P99 * 108 / 100 }, 0.1, false},
		{"compare-slower", func(r *Report) { r.Latency.P99 = 1900 * time.Microsecond; r.Latency.P50 = 500 * time.Microsecond }, 0.1, true},
		{"compare-throughput", func(r *Report) { r.Throughput = 400 }, 0.1, true},
		{"compare-verdicts", func(r *Report) { r.Mismatches, r.Expected = 3, r.Requests-3 }, 0.5, true},
		{"compare-gate", func(r *Report) { r.Latency.P99 = 2100 * time.Microsecond }, 0.5, true},
		{"compare-quantiles", func(r *Report) {
			r.Quantiles = map[string]time.Duration{"p9": time.Millisecond, "p99.9": 30 * time.Millisecond, "max": 40 * time.Millisecond}
		}, 0.1, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := CompareSummaries(old, summaryJSON(t, tc.edit, "p99=2ms"), tc.threshold)
			if err != nil {
				t.Fatal(err)
			}
			if c.Regressed != tc.regressed || c.Kind != "attack" {
				t.Errorf("regressed %v kind %s, want %v attack", c.Regressed, c.Kind, tc.regressed)
			}
			var b bytes.Buffer
			c.WriteText(&b)
			golden(t, tc.name+".golden", b.Bytes())
		})
	}
}

func TestCompareCapacity(t *testing.T) {
	capJSON := func(capacity float64, require float64) []byte {
		r := &CapacityResult{SLO: "p99 <= 10ms", Capacity: capacity, Steps: []Step{{N: 1}}, Pass: true}
		if require > 0 {
			r.Require(require)
		}
		b, _ := json.Marshal(r)
		return b
	}
	for _, tc := range []struct {
		old, new  []byte
		regressed bool
	}{
		{capJSON(20000, 0), capJSON(19000, 0), false},
		{capJSON(20000, 0), capJSON(17000, 0), true},
		{capJSON(20000, 0), capJSON(30000, 0), false},
		{capJSON(20000, 18000), capJSON(17900, 18000), true},
	} {
		c, err := CompareSummaries(tc.old, tc.new, 0.1)
		if err != nil || c.Kind != "capacity" || c.Regressed != tc.regressed {
			var b bytes.Buffer
			if c != nil {
				c.WriteText(&b)
			}
			t.Errorf("%s vs %s: %v regressed=%v, want %v\n%s", tc.old, tc.new, err, c != nil && c.Regressed, tc.regressed, b.String())
		}
	}
	if _, err := CompareSummaries(capJSON(1, 0), summaryJSON(t, func(*Report) {}, ""), 0.1); err == nil || !strings.Contains(err.Error(), "like with like") {
		t.Errorf("capacity vs attack: %v", err)
	}
	if _, err := CompareSummaries([]byte(`{"x":1}`), capJSON(1, 0), 0.1); err == nil || !strings.Contains(err.Error(), "OLD: neither") {
		t.Errorf("unknown JSON: %v", err)
	}
}
