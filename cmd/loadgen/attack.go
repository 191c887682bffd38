package main

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime/pprof"
	"time"

	"github.com/jwtgate/jwtgate/internal/cli"
	"github.com/jwtgate/jwtgate/loadgen"
	"github.com/spf13/pflag"

	"github.com/jwtgate/jwtgate/internal/tlsclient"
)

// attackFlags are the flags attack and capacity share.
type attackFlags struct {
	targets     *string
	maxTargets  *int
	connections *int
	workers     *int
	maxWorkers  *int
	timeout     *time.Duration
	keepalive   *bool
	allowRemote *bool
	samples     *int
	output      *string
	caFile      *string
}

func addAttackFlags(fs *pflag.FlagSet) *attackFlags {
	return &attackFlags{
		targets:     fs.StringP("targets", "t", "", "target file written by mint (required)"),
		maxTargets:  fs.Int("max-targets", 0, "read at most this many targets (0 = all, up to 20M)"),
		connections: fs.Int("connections", loadgen.DefaultConnections, "connections per host"),
		workers:     fs.Int("workers", 0, "initial sending goroutines (default --connections)"),
		maxWorkers:  fs.Int("max-workers", 0, "most sending goroutines (default 4 × --connections)"),
		timeout:     fs.Duration("timeout", loadgen.DefaultTimeout, "per-request timeout"),
		keepalive:   fs.Bool("keepalive", true, "reuse connections"),
		allowRemote: fs.Bool("allow-remote", false, "allow targets that are not on a loopback address (DANGER: this is load)"),
		samples:     fs.Int("samples", loadgen.DefaultSamples, "mismatches printed in full"),
		output:      fs.StringP("output", "o", "", "directory for results (Vegeta binary), summary JSON and plots"),
		caFile:      caFileFlag(fs, "https:// targets"),
	}
}

// load reads the targets and warns when their tokens are stale.
func (af *attackFlags) load(stderr io.Writer, d time.Duration) ([]loadgen.Target, error) {
	if *af.targets == "" {
		return nil, errors.New("--targets is required")
	}
	if f, err := os.Open(loadgen.ManifestPath(*af.targets)); err == nil {
		m, err := loadgen.ReadManifest(f)
		f.Close()
		if err != nil {
			fmt.Fprintf(stderr, "WARNING: %v\n", err)
		} else if s := m.Staleness(time.Now(), d); s != "" {
			fmt.Fprintf(stderr, "WARNING: %s\n", s)
		}
	} else {
		fmt.Fprintf(stderr, "WARNING: no manifest %s: cannot tell whether the valid tokens have expired\n", loadgen.ManifestPath(*af.targets))
	}
	return loadgen.ReadTargetFile(*af.targets, *af.maxTargets)
}

func (af *attackFlags) config(t []loadgen.Target) (loadgen.AttackConfig, error) {
	if !*af.allowRemote {
		// Checked here too, so that a remote target is a usage error
		// (exit 2) found before any request.
		last := ""
		for i := range t {
			if u := t[i].URL; u != last {
				if err := loadgen.CheckLoopbackURL(u); err != nil {
					return loadgen.AttackConfig{}, err
				}
				last = u
			}
		}
	}
	tlsCfg, err := caFileConfig(*af.caFile)
	return loadgen.AttackConfig{Targets: t, Connections: *af.connections, Workers: *af.workers,
		MaxWorkers: *af.maxWorkers, Timeout: *af.timeout, NoKeepAlive: !*af.keepalive,
		AllowRemote: *af.allowRemote, Samples: *af.samples, TLSConfig: tlsCfg}, err
}

// caFileFlag adds --ca-file; its default comes from $JWTGATE_CA_FILE.
func caFileFlag(fs *pflag.FlagSet, what string) *string {
	return fs.String("ca-file", os.Getenv("JWTGATE_CA_FILE"), "PEM CA certificates to trust for "+what+" (default $JWTGATE_CA_FILE, else the system's)")
}

// caFileConfig is the TLS client configuration trusting caFile (nil when
// it is empty).
func caFileConfig(caFile string) (*tls.Config, error) {
	cfg, err := tlsclient.Config(tlsclient.Files{CAFile: caFile})
	if err != nil {
		return nil, fmt.Errorf("--ca-file: %w", err)
	}
	return cfg, nil
}

func runAttack(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := pflag.NewFlagSet("attack", pflag.ContinueOnError)
	rate, _ := loadgen.ParseRate("100/s")
	fs.Var(&rate, "rate", "request rate: constant N/s (or N/100ms) or a linear ramp A/s..B/s over the duration")
	duration := fs.Duration("duration", 10*time.Second, "attack duration (at most 1h)")
	name := fs.String("name", "loadgen", "attack name in the results")
	cpuprofile := fs.String("cpuprofile", "", "write the generator's CPU profile to this file")
	var slos loadgen.SLOs
	fs.Var(&slos, "slo", "latency gate pNN=duration (any quantile, e.g. p99=20ms, p99.9=50ms, max=1s); repeat or comma-separate for several")
	var shard loadgen.Shard
	fs.Var(&shard, "shard", "be generator i of n: send every n-th target from the i-th at --rate/n (merge with loadgen report)")
	summary := fs.String("summary", "", "also write the JSON summary to this file (--output writes summary.json)")
	af := addAttackFlags(fs)
	fs.Usage = func() {
		fmt.Fprintf(stderr, "Usage: loadgen attack --targets FILE [flags]\n\nSends the targets in turn at --rate for --duration and checks every\nresponse: 200 for valid, else 401 with exactly the expected error code.\nExit status 1 when any verdict is wrong, any request failed or an --slo\nwas missed; 2 for usage errors.\n\nExample:\n  loadgen attack -t targets.jsonl --rate 1000/s --duration 10s -o out\n\n%s", cli.FlagUsages(fs))
	}
	if ok, code := parse(fs, args, stderr); !ok {
		return code
	}
	if *duration <= 0 || *duration > loadgen.MaxDuration {
		return usageFail(stderr, "attack", fmt.Errorf("--duration %s is out of range: want more than 0 and at most %s", *duration, loadgen.MaxDuration))
	}
	if *af.targets == "" {
		return usageFail(stderr, "attack", errors.New("--targets is required"))
	}
	targets, err := af.load(stderr, *duration)
	if err != nil {
		return fail(stderr, "attack", err)
	}
	cfg, err := af.config(targets)
	if err != nil {
		return usageFail(stderr, "attack", err)
	}
	cfg.Name, cfg.Rate, cfg.Duration, cfg.SLOs, cfg.Shard = *name, rate, *duration, slos, shard
	var results *os.File
	if *af.output != "" {
		if err := os.MkdirAll(*af.output, 0o755); err != nil {
			return fail(stderr, "attack", err)
		}
		if results, err = os.Create(filepath.Join(*af.output, loadgen.ResultsFile)); err != nil {
			return fail(stderr, "attack", err)
		}
		defer results.Close()
		cfg.Results = results
	}
	cfg.Status = statusLine(stderr, isTTY(stderr))
	if *cpuprofile != "" {
		pf, err := os.Create(*cpuprofile)
		if err != nil {
			return fail(stderr, "attack", err)
		}
		defer pf.Close()
		if err := pprof.StartCPUProfile(pf); err != nil {
			return fail(stderr, "attack", err)
		}
		defer pprof.StopCPUProfile()
	}
	rep, err := loadgen.Attack(ctx, cfg)
	if isTTY(stderr) {
		fmt.Fprint(stderr, "\r\x1b[K")
	}
	if err != nil {
		return fail(stderr, "attack", err)
	}
	if results != nil {
		if err := results.Close(); err != nil {
			return fail(stderr, "attack", err)
		}
		if err := loadgen.WriteOutputs(*af.output, rep); err != nil {
			return fail(stderr, "attack", err)
		}
	}
	if *summary != "" {
		if err := writeJSONFile(*summary, rep); err != nil {
			return fail(stderr, "attack", err)
		}
	}
	if err := rep.WriteText(stdout); err != nil {
		return fail(stderr, "attack", err)
	}
	if *af.output != "" {
		fmt.Fprintf(stdout, "wrote %s/{%s,%s,%s} (vegeta report < %s)\n", *af.output, loadgen.ResultsFile,
			loadgen.SummaryFile, loadgen.PlotFile, filepath.Join(*af.output, loadgen.ResultsFile))
	}
	if !rep.Pass {
		return exitMismatch
	}
	return exitOK
}

// statusLine prints the live status: redrawn in place on a terminal, a
// line every 5s otherwise.
func statusLine(w io.Writer, tty bool) func(loadgen.Status) {
	var last time.Duration
	return func(s loadgen.Status) {
		line := fmt.Sprintf("%5.0fs  %d done  %.0f/s (requested %.0f/s)  %d mismatches  %d errors  %d workers",
			s.Elapsed.Seconds(), s.Done, s.Rate, s.Requested, s.Mismatches, s.Errors, s.Workers)
		if tty {
			fmt.Fprintf(w, "\r%s\x1b[K", line)
			return
		}
		if s.Elapsed-last >= 5*time.Second {
			last = s.Elapsed
			fmt.Fprintln(w, line)
		}
	}
}
