package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"

	"github.com/jwtgate/jwtgate/internal/cli"
	"github.com/jwtgate/jwtgate/loadgen"
	"github.com/spf13/pflag"
)

func runCompare(args []string, stdout, stderr io.Writer) int {
	fs := pflag.NewFlagSet("compare", pflag.ContinueOnError)
	threshold := fs.String("threshold", "10%", "largest change for the worse that passes, as a percentage")
	fs.Usage = func() {
		fmt.Fprintf(stderr, "Usage: loadgen compare OLD NEW [--threshold 10%%]\n\nCompares two JSON summaries of the same kind: attack or report summaries\n(summary.json: throughput, latency quantiles, verdicts, gates) or capacity\nsummaries (capacity.json: capacity, gates). OLD is typically the last\nrelease's. Exit status 1 on a regression: throughput or capacity lower, or\na quantile higher, by more than --threshold; more wrong verdicts or failed\nrequests; a gate failing in NEW that did not fail in OLD. 2 for usage\nerrors.\n\n%s", cli.FlagUsages(fs))
	}
	if ok, code := cli.Parse(fs, "loadgen compare", args, stderr, true); !ok {
		return code
	}
	if fs.NArg() != 2 {
		return usageFail(stderr, "compare", fmt.Errorf("want two summaries, OLD and NEW; got %d arguments", fs.NArg()))
	}
	th, err := parsePercent(*threshold)
	if err != nil {
		return usageFail(stderr, "compare", fmt.Errorf("--threshold %q: %w", *threshold, err))
	}
	oldJSON, err := os.ReadFile(fs.Arg(0))
	if err != nil {
		return fail(stderr, "compare", fmt.Errorf("OLD: %w", err))
	}
	newJSON, err := os.ReadFile(fs.Arg(1))
	if err != nil {
		return fail(stderr, "compare", fmt.Errorf("NEW: %w", err))
	}
	c, err := loadgen.CompareSummaries(oldJSON, newJSON, th)
	if err != nil {
		return fail(stderr, "compare", err)
	}
	if err := c.WriteText(stdout); err != nil {
		return fail(stderr, "compare", err)
	}
	if c.Regressed {
		return exitMismatch
	}
	return exitOK
}

// parsePercent reads "10%" or "10" as the fraction 0.1.
func parsePercent(s string) (float64, error) {
	v, err := strconv.ParseFloat(strings.TrimSuffix(strings.TrimSpace(s), "%"), 64)
	if err != nil || v < 0 || v >= 1000 {
		return 0, errors.New("want a percentage from 0 up, e.g. 10%")
	}
	return v / 100, nil
}
