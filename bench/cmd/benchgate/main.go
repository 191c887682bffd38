// Command benchgate decides a benchmark comparison for CI: it reads the
// base and head results of an interleaved run (`make bench-gate`, Go
// benchmark format), compares every benchmark with benchstat's statistics
// (golang.org/x/perf/benchmath: medians, their confidence intervals, the
// Mann-Whitney U test) and fails on a time/op slowdown over the threshold
// or on any increase in allocs/op. A benchmark whose spread is wider than
// the threshold and cannot be decided is "inconclusive": --rerun names
// those so the caller can run them again, and without --strict they do not
// fail the gate.
//
//	benchgate --threshold 5% --markdown compare.md base.txt head.txt
//
// Exit status: 0 pass (or inconclusive), 1 regression (or inconclusive
// with --strict), 2 usage or unreadable input.
package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"

	"github.com/spf13/pflag"
)

func main() { os.Exit(run(os.Args[1:], os.Stdout, os.Stderr)) }

func run(args []string, stdout, stderr io.Writer) int {
	fs := pflag.NewFlagSet("benchgate", pflag.ContinueOnError)
	fs.SetOutput(stderr)
	threshold := fs.String("threshold", "5%", "largest time/op slowdown that passes (a percentage)")
	alpha := fs.Float64("alpha", DefaultOptions.Alpha, "significance level of the Mann-Whitney U test")
	markdown := fs.String("markdown", "", "write the Markdown summary (for a pull-request comment) to this file")
	rerun := fs.String("rerun", "", "write a `go test -bench` pattern of the inconclusive benchmarks to this file (empty when none) and exit 0")
	reruns := fs.Int("reruns", 0, "how many reruns preceded this decision (shown in the summary)")
	strict := fs.Bool("strict", false, "fail (exit 1) on inconclusive benchmarks too")
	fs.Usage = func() {
		fmt.Fprintf(stderr, "usage: benchgate [flags] BASE.txt HEAD.txt\n\nExit status 0 pass, 1 regression, 2 usage.\n\n%s", fs.FlagUsages())
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, pflag.ErrHelp) {
			return 0
		}
		fmt.Fprintf(stderr, "benchgate: %v (see --help)\n", err)
		return 2
	}
	if fs.NArg() != 2 {
		fmt.Fprintf(stderr, "benchgate: want two result files, BASE and HEAD; got %d arguments (see --help)\n", fs.NArg())
		return 2
	}
	opt := DefaultOptions
	var err error
	if opt.Threshold, err = parsePercent(*threshold); err != nil {
		fmt.Fprintf(stderr, "benchgate: --threshold %q: %v\n", *threshold, err)
		return 2
	}
	if *alpha <= 0 || *alpha >= 1 {
		fmt.Fprintf(stderr, "benchgate: --alpha %v: must be between 0 and 1, e.g. 0.05\n", *alpha)
		return 2
	}
	opt.Alpha = *alpha
	rep, err := compareFiles(fs.Arg(0), fs.Arg(1), opt)
	if err != nil {
		fmt.Fprintf(stderr, "benchgate: %v\n", err)
		return 2
	}
	if *rerun != "" {
		p := rep.RerunPattern()
		if p != "" {
			p += "\n"
		}
		if err := os.WriteFile(*rerun, []byte(p), 0o644); err != nil {
			fmt.Fprintf(stderr, "benchgate: %v\n", err)
			return 2
		}
		fmt.Fprintf(stdout, "benchgate: %s\n", rep.Headline())
		return 0
	}
	if *markdown != "" {
		f, err := os.Create(*markdown)
		if err == nil {
			err = rep.WriteMarkdown(f, *reruns)
			if cerr := f.Close(); err == nil {
				err = cerr
			}
		}
		if err != nil {
			fmt.Fprintf(stderr, "benchgate: %v\n", err)
			return 2
		}
	}
	if err := rep.WriteText(stdout); err != nil {
		fmt.Fprintf(stderr, "benchgate: %v\n", err)
		return 2
	}
	if rep.Failed() || (*strict && rep.Count(Inconclusive) > 0) {
		return 1
	}
	return 0
}

func compareFiles(basePath, headPath string, opt Options) (*Report, error) {
	b, err := os.Open(basePath)
	if err != nil {
		return nil, err
	}
	defer b.Close()
	h, err := os.Open(headPath)
	if err != nil {
		return nil, err
	}
	defer h.Close()
	return Compare(b, h, opt)
}

// parsePercent reads "5%", "5" or "0.05%"; the result is a fraction.
func parsePercent(s string) (float64, error) {
	v, err := strconv.ParseFloat(strings.TrimSuffix(strings.TrimSpace(s), "%"), 64)
	if err != nil || v <= 0 || v >= 1000 {
		return 0, errors.New("want a percentage above 0, e.g. 5%")
	}
	return v / 100, nil
}

// WriteText writes the verdicts one per line, regressions first, and the
// headline last.
func (r *Report) WriteText(w io.Writer) error {
	var b strings.Builder
	for _, row := range r.Rows {
		fmt.Fprintf(&b, "%-12s %-60s %s  %s\n", row.Verdict, row.Name, deltaCell(row.Time), row.Why)
	}
	fmt.Fprintf(&b, "benchgate: %s\n", r.Headline())
	_, err := io.WriteString(w, b.String())
	return err
}
