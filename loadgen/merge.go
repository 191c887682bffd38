package loadgen

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	vegeta "github.com/tsenart/vegeta/v12/lib"
)

// MaxMergeDirs bounds the number of generator outputs Merge reads.
const MaxMergeDirs = 1024

// ReadSummary reads an attack's summary.json.
func ReadSummary(path string) (*Report, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var r Report
	if err := json.Unmarshal(b, &r); err != nil {
		return nil, fmt.Errorf("%s: not an attack summary: %w", path, err)
	}
	return &r, nil
}

// Merge puts the outputs of several generators that attacked at the same
// time (attack --output, usually with --shard i/n) back together into one
// report: latencies and throughput from every request of every results
// file (so quantiles are over all requests, not averages of quantiles),
// verdict counts per class summed from the summaries, then the gates: the
// verdicts, every shard present exactly once when shards were used, and
// each SLO.
func Merge(dirs []string, slos SLOs) (*Report, error) {
	if len(dirs) == 0 {
		return nil, errors.New("merge: no directories")
	}
	if len(dirs) > MaxMergeDirs {
		return nil, fmt.Errorf("merge: %d directories, at most %d", len(dirs), MaxMergeDirs)
	}
	var m vegeta.Metrics
	var reps []*Report
	for _, dir := range dirs {
		rep, err := ReadSummary(filepath.Join(dir, SummaryFile))
		if err != nil {
			return nil, fmt.Errorf("merge: %w (is %s the --output of loadgen attack?)", err, dir)
		}
		if err := addResults(&m, filepath.Join(dir, ResultsFile)); err != nil {
			return nil, fmt.Errorf("merge: %w", err)
		}
		reps = append(reps, rep)
	}
	m.Close()
	out := &Report{Generators: len(reps), Requests: m.Requests, StatusCodes: m.StatusCodes,
		Latency: Latency{P50: m.Latencies.P50, P90: m.Latencies.P90, P95: m.Latencies.P95,
			P99: m.Latencies.P99, Max: m.Latencies.Max, Mean: m.Latencies.Mean}}
	var rates, names []string
	var classOrder []string
	classes := map[string]*ClassCount{}
	for i, r := range reps {
		out.RequestedRate += r.RequestedRate
		out.SentRate += r.SentRate
		out.Duration = max(out.Duration, r.Duration)
		out.Connections += r.Connections
		out.Workers += r.Workers
		out.Mismatches += r.Mismatches
		out.Errors += r.Errors
		out.CPU.Total += r.CPU.Total
		out.CPU.Cores += r.CPU.Cores
		out.CPU.Saturated = out.CPU.Saturated || r.CPU.Saturated
		rates = append(rates, r.Rate)
		if !slices.Contains(names, r.Name) {
			names = append(names, r.Name)
		}
		for _, c := range r.Classes {
			cc := classes[c.Class]
			if cc == nil {
				cc = &ClassCount{Class: c.Class}
				classes[c.Class] = cc
				classOrder = append(classOrder, c.Class)
			}
			cc.Sent += c.Sent
			cc.Mismatches += c.Mismatches
		}
		for _, s := range r.Samples {
			if len(out.Samples) < DefaultSamples {
				out.Samples = append(out.Samples, s)
			}
		}
		for _, w := range r.Warnings {
			out.Warnings = append(out.Warnings, fmt.Sprintf("generator %d (%s): %s", i+1, dirs[i], w))
		}
	}
	out.Name = strings.Join(names, "+")
	out.Rate = joinRates(rates)
	for _, c := range classOrder {
		out.Classes = append(out.Classes, *classes[c])
	}
	if out.Requests >= out.Mismatches+out.Errors {
		out.Expected = out.Requests - out.Mismatches - out.Errors
	}
	if out.Requests > 0 {
		out.Success = float64(out.Expected) / float64(out.Requests)
		out.CPU.PerRequest = out.CPU.Total / time.Duration(out.Requests)
	}
	if out.Requests > 0 { // over the same window as SentRate: never above it
		out.Throughput = out.SentRate * float64(out.Expected) / float64(out.Requests)
	}
	if w := out.Duration.Seconds() * float64(out.CPU.Cores); w > 0 {
		out.CPU.Share = out.CPU.Total.Seconds() / w
	}
	if len(slos) > 0 {
		out.Quantiles = map[string]time.Duration{}
		for _, q := range slos.Quantiles() {
			out.Quantiles[QuantileName(q)] = m.Latencies.Quantile(q)
		}
	}
	out.Check(slos)
	if g, ok := shardGate(reps); ok {
		out.Gates = slices.Insert(out.Gates, 1, g)
		out.Pass = out.Pass && g.Pass
	}
	return out, nil
}

func addResults(m *vegeta.Metrics, path string) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	dec := vegeta.NewDecoder(bufio.NewReader(f))
	for {
		var r vegeta.Result
		if err := dec.Decode(&r); err != nil {
			if errors.Is(err, io.EOF) {
				return nil
			}
			return fmt.Errorf("%s: %w", path, err)
		}
		m.Add(&r)
	}
}

// shardGate checks that sharded generators' outputs hold each shard of
// one split exactly once; ok is false when no generator was sharded.
func shardGate(reps []*Report) (Gate, bool) {
	var shards []Shard
	for _, r := range reps {
		if r.Shard == "" {
			continue
		}
		s, err := ParseShard(r.Shard)
		if err != nil {
			return Gate{Name: "shards", Got: err.Error()}, true
		}
		shards = append(shards, s)
	}
	if len(shards) == 0 {
		return Gate{}, false
	}
	n := shards[0].N
	seen := make([]int, n+1)
	var problems []string
	for _, s := range shards {
		if s.N != n {
			problems = append(problems, fmt.Sprintf("shard %s is of another split than %d/%d", s, shards[0].I, n))
			continue
		}
		seen[s.I]++
	}
	if len(reps) != len(shards) {
		problems = append(problems, fmt.Sprintf("%d unsharded generators among sharded ones", len(reps)-len(shards)))
	}
	for i := 1; i <= n; i++ {
		switch {
		case seen[i] == 0:
			problems = append(problems, fmt.Sprintf("%d/%d missing", i, n))
		case seen[i] > 1:
			problems = append(problems, fmt.Sprintf("%d/%d given %d times", i, n, seen[i]))
		}
	}
	g := Gate{Name: fmt.Sprintf("shards 1..%d", n), Got: fmt.Sprintf("%d of %d", len(shards), n), Pass: len(problems) == 0}
	if !g.Pass {
		g.Got = strings.Join(problems, "; ")
	}
	return g, true
}

// joinRates describes the generators' rates: "1000/3s ×3" when all equal.
func joinRates(rates []string) string {
	if len(rates) > 1 && slices.Equal(rates, slices.Repeat(rates[:1], len(rates))) {
		return fmt.Sprintf("%s ×%d", rates[0], len(rates))
	}
	return strings.Join(rates, " + ")
}
