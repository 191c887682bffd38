package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"github.com/jwtgate/jwtgate/internal/cli"
	"github.com/jwtgate/jwtgate/loadgen"
	"github.com/spf13/pflag"
)

// Files written by capacity into --output.
const (
	capacitySVG  = "capacity.svg"
	capacityJSON = "capacity.json"
)

func runCapacity(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := pflag.NewFlagSet("capacity", pflag.ContinueOnError)
	slo, _ := loadgen.ParseSLO("p99=10ms")
	fs.Var(&slo, "slo", "latency objective `pNN=duration`: any percentile 0 < NN < 100 (p50, p95, p99, p99.9, ...) or max=duration")
	start := fs.Float64("start", 500, "first rate tried (req/s); it doubles while steps pass, then bisects")
	maxRate := fs.Float64("max", 100000, "highest rate tried (req/s)")
	step := fs.Duration("step-duration", 5*time.Second, "duration of each step")
	precision := fs.Float64("precision", 0.05, "stop when pass and fail rates are this close (fraction)")
	maxSteps := fs.Int("max-steps", 12, "most steps")
	require := fs.String("require", "", "gate: exit 1 unless the capacity found is at least this rate, e.g. 20000/s")
	summary := fs.String("summary", "", "also write the JSON summary to this file (--output writes capacity.json)")
	af := addAttackFlags(fs)
	fs.Lookup("output").Usage = "`DIR` to write capacity.svg (latency against achieved rate, the SLO line) and capacity.json (every step)"
	fs.Usage = func() {
		fmt.Fprintf(stderr, "Usage: loadgen capacity --targets FILE [flags]\n\nFinds the highest rate that holds --slo with zero mismatches and zero\nerrors. Prints a table per step and ends with\n\"capacity: N req/s at p99 <= SLO\", or \"capacity: >= N req/s ...\" when no\nstep failed (N is then only a lower bound: raise --max or --max-steps).\n--output DIR gets capacity.svg (the chart) and capacity.json (the steps).\n\nExample:\n  loadgen capacity -t targets.jsonl --slo p99=10ms --start 500 -o cap\n\nExit status 1 when a step had wrong verdicts, no rate held the SLO, or the\ncapacity is below --require; 2 for usage errors.\n\n%s", cli.FlagUsages(fs))
	}
	if ok, code := parse(fs, args, stderr); !ok {
		return code
	}
	if *step <= 0 || *step > 10*time.Minute {
		return usageFail(stderr, "capacity", fmt.Errorf("--step-duration %s is out of range: want more than 0 and at most 10m", *step))
	}
	if *maxSteps < 1 || *maxSteps > 50 {
		return usageFail(stderr, "capacity", fmt.Errorf("--max-steps %d is out of range: want 1 to 50", *maxSteps))
	}
	var required float64
	if *require != "" {
		r, err := loadgen.ParseRequiredRate(*require)
		if err != nil {
			return usageFail(stderr, "capacity", fmt.Errorf("--require %q: %w", *require, err))
		}
		required = r
		if required > *maxRate {
			return usageFail(stderr, "capacity", fmt.Errorf("--require %q is above --max %.0f: the search would never reach it; raise --max", *require, *maxRate))
		}
	}
	if *af.targets == "" {
		return usageFail(stderr, "capacity", errors.New("--targets is required"))
	}
	targets, err := af.load(stderr, time.Duration(*maxSteps)*(*step))
	if err != nil {
		return fail(stderr, "capacity", err)
	}
	acfg, err := af.config(targets)
	if err != nil {
		return usageFail(stderr, "capacity", err)
	}
	fmt.Fprintln(stdout, loadgen.StepHeader)
	res, err := loadgen.Capacity(ctx, loadgen.CapacityConfig{
		Attack: acfg, SLO: slo, Start: *start, Max: *maxRate, StepDuration: *step,
		Precision: *precision, MaxSteps: *maxSteps,
		Step: func(s loadgen.Step) { fmt.Fprintln(stdout, loadgen.FormatStep(s)) },
	})
	if err != nil && res == nil {
		return fail(stderr, "capacity", err)
	}
	if err != nil {
		fmt.Fprintf(stderr, "loadgen capacity: stopped: %v\n", err)
	}
	if res.GeneratorBound {
		fmt.Fprintln(stdout, "WARNING: the generator's CPU was saturated in a failing step: the capacity is a lower bound")
	}
	res.Pass = res.Capacity > 0 && err == nil
	for _, s := range res.Steps {
		res.Pass = res.Pass && s.Mismatches == 0
	}
	if *require != "" {
		res.Require(required)
	}
	if *af.output != "" {
		if err := writeCapacity(*af.output, res, slo); err != nil {
			return fail(stderr, "capacity", err)
		}
	}
	if *summary != "" {
		if err := writeJSONFile(*summary, res); err != nil {
			return fail(stderr, "capacity", err)
		}
	}
	fmt.Fprintln(stdout, res.Line())
	for _, g := range res.Gates {
		word := "PASS"
		if !g.Pass {
			word = "FAIL"
		}
		fmt.Fprintf(stdout, "gate: %s: found %s: %s\n", g.Name, g.Got, word)
	}
	if !res.Pass {
		return exitMismatch
	}
	return exitOK
}

func writeCapacity(dir string, res *loadgen.CapacityResult, slo loadgen.SLO) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	f, err := os.Create(filepath.Join(dir, capacitySVG))
	if err != nil {
		return err
	}
	if err := res.WriteSVG(f, slo); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	j, err := os.Create(filepath.Join(dir, capacityJSON))
	if err != nil {
		return err
	}
	if err := writeJSON(j, res); err != nil {
		j.Close()
		return err
	}
	return j.Close()
}
