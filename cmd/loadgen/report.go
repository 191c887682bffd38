package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/jwtgate/jwtgate/internal/cli"
	"github.com/jwtgate/jwtgate/loadgen"
	"github.com/spf13/pflag"
)

func runReport(args []string, stdout, stderr io.Writer) int {
	fs := pflag.NewFlagSet("report", pflag.ContinueOnError)
	var slos loadgen.SLOs
	fs.Var(&slos, "slo", "latency gate pNN=duration on all requests (any quantile); repeat or comma-separate for several")
	output := fs.StringP("output", "o", "", "directory for the merged summary.json")
	summary := fs.String("summary", "", "write the merged JSON summary to this file")
	fs.Usage = func() {
		fmt.Fprintf(stderr, "Usage: loadgen report DIR... [flags]\n\nMerges the --output directories of several generators that attacked at\nthe same time (loadgen attack --shard i/n -o DIR, one per generator) into\none report: latency quantiles over every request of every generator, the\nverdict table per class, and the gates: every verdict as expected, every\nshard present once, each --slo. Exit status 1 when a gate failed, 2 for\nusage errors.\n\n%s", cli.FlagUsages(fs))
	}
	if ok, code := cli.Parse(fs, "loadgen report", args, stderr, true); !ok {
		return code
	}
	if fs.NArg() == 0 {
		return usageFail(stderr, "report", errors.New("want one or more attack --output directories"))
	}
	rep, err := loadgen.Merge(fs.Args(), slos)
	if err != nil {
		return fail(stderr, "report", err)
	}
	if *output != "" {
		if err := os.MkdirAll(*output, 0o755); err != nil {
			return fail(stderr, "report", err)
		}
		if err := writeJSONFile(filepath.Join(*output, loadgen.SummaryFile), rep); err != nil {
			return fail(stderr, "report", err)
		}
	}
	if *summary != "" {
		if err := writeJSONFile(*summary, rep); err != nil {
			return fail(stderr, "report", err)
		}
	}
	if err := rep.WriteText(stdout); err != nil {
		return fail(stderr, "report", err)
	}
	if !rep.Pass {
		return exitMismatch
	}
	return exitOK
}
