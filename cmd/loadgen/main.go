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
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	"github.com/spf13/pflag"
)

// Exit statuses.
const (
	exitOK       = 0
	exitMismatch = 1 // the run found wrong verdicts or failed requests
	exitUsage    = 2 // bad flags or a setup error
)

var version = "dev"

func main() { os.Exit(run(os.Args[1:], os.Stdout, os.Stderr)) }

const usage = `loadgen: load generator for jwtgate

usage:
  loadgen mint     [flags]   register keys and mint a Vegeta target file
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
	fs.SetOutput(stderr)
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, pflag.ErrHelp) {
			return false, exitOK
		}
		fmt.Fprintf(stderr, "loadgen %s: %v (see --help)\n", fs.Name(), err)
		return false, exitUsage
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "loadgen %s: unexpected arguments %q\n", fs.Name(), fs.Args())
		return false, exitUsage
	}
	return true, 0
}

func fail(stderr io.Writer, cmd string, err error) int {
	fmt.Fprintf(stderr, "loadgen %s: %v\n", cmd, err)
	return exitUsage
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
