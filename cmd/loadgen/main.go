// Command loadgen mints token batches for jwtgate, attacks a running
// jwtgate with them checking every verdict, and finds its capacity under a
// latency SLO. It is a thin shell over package loadgen.
//
//	loadgen mint --count 100000 --output targets.jsonl
//	loadgen attack --targets targets.jsonl --rate 2000/s --duration 30s --output out/
//	loadgen capacity --targets targets.jsonl --slo p99=10ms --require 20000/s
//	loadgen compare last-release/summary.json out/summary.json --threshold 10%
//
// Load goes only to loopback addresses unless --allow-remote is given.
package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	"github.com/jwtgate/jwtgate/internal/cli"
	"github.com/spf13/pflag"
)

// Exit statuses, as jwtgate's: 2 for usage errors (a bad flag or
// argument), 1 for failures at run time (wrong verdicts, failed requests,
// a file that cannot be read, a server that refuses).
const (
	exitOK       = cli.ExitOK
	exitMismatch = cli.ExitFailure // the run found wrong verdicts or failed requests
	exitFailure  = cli.ExitFailure
	exitUsage    = cli.ExitUsage
)

var version = "dev"

func main() { os.Exit(run(os.Args[1:], os.Stdout, os.Stderr)) }

const usage = `loadgen: load generator for jwtgate

Usage:
  loadgen mint     [flags]   register keys and mint a Vegeta target file
  loadgen clean    [flags]   delete the lg-* keys a mint run registered
  loadgen attack   [flags]   attack at a rate, check every verdict, report
  loadgen capacity [flags]   find the highest rate that holds a latency SLO
  loadgen report DIR...      merge several generators' results into one report
  loadgen compare OLD NEW    compare two JSON summaries; exit 1 on a regression
  loadgen version

Run "loadgen <command> --help" for a command's flags.
Load is sent only to 127.0.0.0/8, ::1 and localhost unless --allow-remote.
`

func run(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return exitUsage
	}
	ctx, stop := signalContext()
	defer stop()
	switch args[0] {
	case "mint":
		return runMint(ctx, args[1:], stdout, stderr)
	case "clean":
		return runClean(ctx, args[1:], stdout, stderr)
	case "attack":
		return runAttack(ctx, args[1:], stdout, stderr)
	case "capacity":
		return runCapacity(ctx, args[1:], stdout, stderr)
	case "report":
		return runReport(args[1:], stdout, stderr)
	case "compare":
		return runCompare(args[1:], stdout, stderr)
	case "version":
		fmt.Fprintln(stdout, "loadgen", version)
		return exitOK
	case "help", "-h", "--help":
		fmt.Fprint(stdout, usage)
		return exitOK
	}
	fmt.Fprintf(stderr, "loadgen: unknown command %q\n\n%s", args[0], usage)
	return exitUsage
}

// signalContext is cancelled by the first SIGINT/SIGTERM (the run drains
// and reports); a second one gets the default behaviour and exits.
func signalContext() (context.Context, func()) {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	go func() { <-ctx.Done(); stop() }()
	return ctx, stop
}

// parse parses a FlagSet; it reports whether to go on and the exit status
// otherwise.
func parse(fs *pflag.FlagSet, args []string, stderr io.Writer) (bool, int) {
	return cli.Parse(fs, "loadgen "+fs.Name(), args, stderr, false)
}

// fail reports a failure at run time: exit 1.
func fail(stderr io.Writer, cmd string, err error) int {
	fmt.Fprintf(stderr, "loadgen %s: %v\n", cmd, err)
	return exitFailure
}

// usageFail reports a usage error (a flag or argument the command cannot
// use): exit 2, with a pointer to --help.
func usageFail(stderr io.Writer, cmd string, err error) int {
	return cli.UsageError(stderr, "loadgen "+cmd, err.Error())
}

func isTTY(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}

func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// writeJSONFile writes v as indented JSON to path.
func writeJSONFile(path string, v any) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if err := writeJSON(f, v); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}
