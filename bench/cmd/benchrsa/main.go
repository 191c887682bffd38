// Command benchrsa measures RSA verification the way it can be trusted on a
// shared or unfamiliar host: it prints the CPU identity (vendor,
// family/model/stepping, flags), then runs package rsaverify's
// BenchmarkVerify (ours, crypto/rsa and the portable path) and `openssl
// speed rsa2048` in alternating rounds, and reports per-round ratios: their
// median and their spread (min–max). A ratio that holds only in some rounds
// or on one host shows as such.
//
//	go run ./bench/cmd/benchrsa --rounds 8 --out bench-results/rsa.txt --doc docs/BENCHMARKS.md
//
// `make bench-rsa` runs it. With --results it only re-renders a results
// file it wrote before.
package main

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/jwtgate/jwtgate/internal/cpuinfo"
	"github.com/spf13/pflag"
)

func main() { os.Exit(run(os.Args[1:], os.Stdout, os.Stderr)) }

const (
	pkg       = "./engine/internal/rsaverify"
	enginePkg = "./engine"
)

// markers delimit the block --doc rewrites, named by --block.
func markers(block string) (begin, end string) {
	return "<!-- bench:" + block + " -->", "<!-- /bench:" + block + " -->"
}

type config struct {
	rounds         int
	benchtime      string
	opensslSeconds int
	bits           []int
	impls          []string
	out, doc, res  string
	opensslBin     string
	goarch, execW  string
	block          string
	engine         bool
}

func run(args []string, stdout, stderr io.Writer) int {
	fs := pflag.NewFlagSet("benchrsa", pflag.ContinueOnError)
	fs.SetOutput(stderr)
	var c config
	fs.IntVar(&c.rounds, "rounds", 8, "alternating rounds (each: one Go benchmark run per implementation, one openssl speed run)")
	fs.StringVar(&c.benchtime, "benchtime", "1s", "Go -test.benchtime per benchmark and round")
	fs.IntVar(&c.opensslSeconds, "openssl-seconds", 2, "openssl speed -seconds per round; 0 skips OpenSSL")
	fs.IntSliceVar(&c.bits, "bits", []int{2048, 3072, 4096}, "key sizes (2048, 3072, 4096)")
	fs.StringSliceVar(&c.impls, "impl", []string{"ours", "stdlib", "noadx", "portable"}, "Go implementations: ours, stdlib (crypto/rsa), noadx (ours without BMI2/ADX: MULQ assembly, amd64), portable (ours in Go only)")
	fs.StringVar(&c.out, "out", "", "write the raw results (benchstat format) here")
	fs.StringVar(&c.doc, "doc", "", "rewrite the block between <!-- bench:BLOCK --> and <!-- /bench:BLOCK --> of this markdown file")
	fs.StringVar(&c.block, "block", "rsa", "name of the --doc block")
	fs.BoolVar(&c.engine, "engine", true, "also run the engine's cold verify (BenchmarkVerify/bits=2048/path=cold: decode, parse, SHA-256, RSA) each round, as impl=engine-cold")
	fs.StringVar(&c.goarch, "goarch", "", "build the benchmarks for this GOARCH (e.g. arm64, run with --exec)")
	fs.StringVar(&c.execW, "exec", "", "run the benchmark binary through this program (e.g. qemu-aarch64-static)")
	fs.StringVar(&c.res, "results", "", "render this results file instead of measuring")
	fs.StringVar(&c.opensslBin, "openssl", "openssl", "openssl binary")
	if err := fs.Parse(args); err != nil {
		if err != pflag.ErrHelp {
			fmt.Fprintln(stderr, "benchrsa:", err)
		}
		return 2
	}
	if c.rounds < 1 {
		fmt.Fprintf(stderr, "benchrsa: --rounds %d: need at least 1 (use 6 or more for a spread worth reading)\n", c.rounds)
		return 2
	}
	for _, b := range c.bits {
		if b != 2048 && b != 3072 && b != 4096 {
			fmt.Fprintf(stderr, "benchrsa: --bits %d: the benchmark keys are 2048, 3072 and 4096 bits\n", b)
			return 2
		}
	}
	for _, i := range c.impls {
		if i != "ours" && i != "stdlib" && i != "noadx" && i != "portable" {
			fmt.Fprintf(stderr, "benchrsa: --impl %q: want ours, stdlib, noadx or portable\n", i)
			return 2
		}
	}
	var raw []byte
	var err error
	if c.res != "" {
		raw, err = os.ReadFile(c.res)
	} else {
		raw, err = measure(&c, stderr)
	}
	if err != nil {
		fmt.Fprintln(stderr, "benchrsa:", err)
		return 1
	}
	if c.out != "" && c.res == "" {
		if err := os.MkdirAll(filepath.Dir(c.out), 0o755); err == nil {
			err = os.WriteFile(c.out, raw, 0o644)
		}
		if err != nil {
			fmt.Fprintln(stderr, "benchrsa:", err)
			return 1
		}
	}
	r := parse(raw)
	source := c.res
	if source == "" {
		source = c.out
	}
	md := r.markdown(c.bits, filepath.Base(source))
	io.WriteString(stdout, md)
	if c.doc != "" {
		if err := rewrite(c.doc, c.block, md); err != nil {
			fmt.Fprintln(stderr, "benchrsa:", err)
			return 1
		}
	}
	return 0
}

// measure builds the rsaverify test binary once and runs the rounds.
func measure(c *config, stderr io.Writer) ([]byte, error) {
	if c.opensslSeconds > 0 {
		if _, err := exec.LookPath(c.opensslBin); err != nil {
			return nil, fmt.Errorf("--openssl %s: %w (install openssl, or skip it with --openssl-seconds 0, make bench-rsa RSA_OPENSSL_S=0)", c.opensslBin, err)
		}
	}
	// The packages are named from the module root, wherever this runs.
	gomod, err := exec.Command("go", "env", "GOMOD").Output()
	if err != nil || strings.TrimSpace(string(gomod)) == "" || strings.TrimSpace(string(gomod)) == os.DevNull {
		return nil, errors.New("not inside the jwtgate module: run from the repository (make bench-rsa)")
	}
	root := filepath.Dir(strings.TrimSpace(string(gomod)))
	pkg := filepath.Join(root, pkg)
	enginePkg := filepath.Join(root, enginePkg)
	tmp, err := os.MkdirTemp("", "benchrsa")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(tmp)
	bin := filepath.Join(tmp, "rsaverify.test")
	build := exec.Command("go", "test", "-c", "-o", bin, pkg)
	build.Stderr = stderr
	if c.goarch != "" {
		build.Env = append(os.Environ(), "GOARCH="+c.goarch)
	}
	if err := build.Run(); err != nil {
		return nil, fmt.Errorf("building %s: %w", pkg, err)
	}
	ebin := filepath.Join(tmp, "engine.test")
	if c.engine {
		build := exec.Command("go", "test", "-c", "-o", ebin, enginePkg)
		build.Stderr = stderr
		if c.goarch != "" {
			build.Env = append(os.Environ(), "GOARCH="+c.goarch)
		}
		if err := build.Run(); err != nil {
			return nil, fmt.Errorf("building %s: %w", enginePkg, err)
		}
	}
	cpu := cpuinfo.Read()
	var out bytes.Buffer
	fmt.Fprintf(&out, "date: %s\n%s", time.Now().UTC().Format(time.RFC3339), cpu.Config())
	if v, err := exec.Command(c.opensslBin, "version").Output(); err == nil {
		fmt.Fprintf(&out, "openssl: %s\n", strings.TrimSpace(string(v)))
	}
	if v, err := exec.Command("go", "version").Output(); err == nil {
		fmt.Fprintf(&out, "go: %s\n", strings.TrimSpace(string(v)))
	}
	if c.execW != "" {
		fmt.Fprintf(&out, "emulation: GOARCH=%s under %s\n", c.goarch, c.execW)
	}
	fmt.Fprintf(stderr, "cpu: %s\n", cpu)

	bitsRe := make([]string, len(c.bits))
	for i, b := range c.bits {
		bitsRe[i] = strconv.Itoa(b)
	}
	benchRe := "^BenchmarkVerify$/^bits=(" + strings.Join(bitsRe, "|") + ")$/^impl=(" + strings.Join(c.impls, "|") + ")$"
	runBench := func(bin, dir, re string, rename func(string) string) error {
		args := []string{bin, "-test.run", "^$", "-test.bench", re, "-test.benchmem",
			"-test.benchtime", c.benchtime, "-test.count", "1"}
		if c.execW != "" {
			args = append([]string{c.execW}, args...)
		}
		cmd := exec.Command(args[0], args[1:]...)
		cmd.Dir = dir
		cmd.Stderr = stderr
		b, err := cmd.Output()
		if err != nil {
			return fmt.Errorf("benchmark run: %w\n%s", err, b)
		}
		for _, line := range strings.Split(string(b), "\n") {
			if strings.HasPrefix(line, "Benchmark") {
				out.WriteString(rename(line) + "\n")
			}
		}
		return nil
	}
	goRound := func() error {
		if err := runBench(bin, pkg, benchRe, func(l string) string { return l }); err != nil {
			return err
		}
		if !c.engine {
			return nil
		}
		return runBench(ebin, enginePkg, "^BenchmarkVerify$/^bits=2048$/^path=cold$", func(l string) string {
			return strings.Replace(l, "BenchmarkVerify/bits=2048/path=cold", "BenchmarkVerify/bits=2048/impl=engine-cold", 1)
		})
	}
	osslRound := func() error {
		if c.opensslSeconds == 0 {
			return nil
		}
		b, err := exec.Command(c.opensslBin, "speed", "-seconds", strconv.Itoa(c.opensslSeconds), "rsa2048").Output()
		if err != nil {
			return fmt.Errorf("%s speed: %w (install openssl, or skip it with --openssl-seconds 0, make bench-rsa RSA_OPENSSL_S=0)", c.opensslBin, err)
		}
		vs, ok := opensslVerify(b)
		if !ok {
			return errors.New("openssl speed: no rsa 2048 verify figure in its output")
		}
		fmt.Fprintf(&out, "BenchmarkVerify/bits=2048/impl=openssl 1 %.0f ns/op\n", 1e9/vs)
		return nil
	}
	for i := 1; i <= c.rounds; i++ {
		fmt.Fprintf(stderr, "round %d/%d\n", i, c.rounds)
		first, second := goRound, osslRound
		if i%2 == 0 { // alternate which side runs first
			first, second = second, first
		}
		if err := first(); err != nil {
			return nil, err
		}
		if err := second(); err != nil {
			return nil, err
		}
	}
	return out.Bytes(), nil
}

var opensslRSA = regexp.MustCompile(`(?m)^rsa\s+2048\s+bits\s+\S+\s+\S+\s+[\d.]+\s+([\d.]+)`)

// opensslVerify returns the verify/s column of `openssl speed rsa2048`.
func opensslVerify(b []byte) (float64, bool) {
	m := opensslRSA.FindSubmatch(b)
	if m == nil {
		return 0, false
	}
	v, err := strconv.ParseFloat(string(m[1]), 64)
	return v, err == nil && v > 0
}

func rewrite(path, block, md string) error {
	beginMarker, endMarker := markers(block)
	doc, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	i := bytes.Index(doc, []byte(beginMarker))
	j := bytes.Index(doc, []byte(endMarker))
	if i < 0 || j < i {
		return fmt.Errorf("%s: no %s ... %s block to rewrite; add the two markers where the table goes", path, beginMarker, endMarker)
	}
	var b bytes.Buffer
	b.Write(doc[:i+len(beginMarker)])
	b.WriteString("\n")
	b.WriteString(md)
	b.Write(doc[j:])
	return os.WriteFile(path, b.Bytes(), 0o644)
}
