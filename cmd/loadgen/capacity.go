package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

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
	fs.Var(&slo, "slo", "latency objective: pNN=duration (p50, p90, p95, p99 or max)")
	start := fs.Float64("start", 500, "first rate tried (req/s); it doubles while steps pass, then bisects")
	maxRate := fs.Float64("max", 100000, "highest rate tried (req/s)")
	step := fs.Duration("step-duration", 5*time.Second, "duration of each step")
	precision := fs.Float64("precision", 0.05, "stop when pass and fail rates are this close (fraction)")
	maxSteps := fs.Int("max-steps", 12, "most steps")
	af := addAttackFlags(fs)
	fs.Usage = func() {
		fmt.Fprintf(stderr, "usage: loadgen capacity --targets FILE [flags]\n\nFinds the highest rate that holds --slo with zero mismatches and zero\nerrors. Prints a table per step and ends with\n\"capacity: N req/s at p99 <= SLO\". --output gets capacity.svg and capacity.json.\n\n%s", fs.FlagUsages())
	}
	if ok, code := parse(fs, args, stderr); !ok {
		return code
	}
	if *step <= 0 || *step > 10*time.Minute || *maxSteps < 1 || *maxSteps > 50 {
		return fail(stderr, "capacity", fmt.Errorf("--step-duration must be in (0, 10m] and --max-steps in [1, 50]"))
	}
	targets, err := af.load(stderr, time.Duration(*maxSteps)*(*step))
	if err != nil {
		return fail(stderr, "capacity", err)
	}
	fmt.Fprintln(stdout, loadgen.StepHeader)
	res, err := loadgen.Capacity(ctx, loadgen.CapacityConfig{
		Attack: af.config(targets), SLO: slo, Start: *start, Max: *maxRate, StepDuration: *step,
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
	if *af.output != "" {
		if err := writeCapacity(*af.output, res, slo); err != nil {
			return fail(stderr, "capacity", err)
		}
	}
	fmt.Fprintln(stdout, res.Line())
	for _, s := range res.Steps {
		if s.Mismatches > 0 {
			return exitMismatch
		}
	}
	if res.Capacity == 0 || err != nil {
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
