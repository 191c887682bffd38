// Command benchdoc turns a results file of jwtgate's benchmark suites
// (bench/, benchstat format) into the tables of docs/BENCHMARKS.md and the
// SVG charts docs/img/bench-*.svg. It rewrites only the text between the
// markers <!-- bench:generated --> and <!-- /bench:generated -->.
//
//	go run ./bench/cmd/benchdoc --results bench-results/X.txt \
//	    --openssl bench-results/openssl-rsa2048.txt --doc docs/BENCHMARKS.md --img docs/img
//
// `make bench-doc` runs the suites and openssl, then this.
package main

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/spf13/pflag"
)

func main() { os.Exit(run(os.Args[1:], os.Stdout, os.Stderr)) }

const (
	beginMarker = "<!-- bench:generated -->"
	endMarker   = "<!-- /bench:generated -->"
)

func run(args []string, stdout, stderr io.Writer) int {
	fs := pflag.NewFlagSet("benchdoc", pflag.ContinueOnError)
	fs.SetOutput(stderr)
	results := fs.String("results", "", "benchmark results file (go test -bench output)")
	opensslFile := fs.String("openssl", "", "output of `openssl speed -seconds 3 rsa2048` (optional)")
	doc := fs.String("doc", "docs/BENCHMARKS.md", "markdown file whose generated block is rewritten; empty prints to stdout")
	img := fs.String("img", "docs/img", "directory for the SVG charts; empty writes none")
	if err := fs.Parse(args); err != nil {
		if err != pflag.ErrHelp {
			fmt.Fprintln(stderr, "benchdoc:", err)
		}
		return 2
	}
	if *results == "" {
		fmt.Fprintln(stderr, "benchdoc: --results is required")
		return 2
	}
	if err := generate(*results, *opensslFile, *doc, *img, stdout); err != nil {
		fmt.Fprintln(stderr, "benchdoc:", err)
		return 1
	}
	return 0
}

func generate(resultsPath, opensslPath, docPath, imgDir string, stdout io.Writer) error {
	f, err := os.Open(resultsPath)
	if err != nil {
		return err
	}
	res, err := Parse(f)
	f.Close()
	if err != nil {
		return err
	}
	if len(res.Order) == 0 {
		return errors.New(resultsPath + ": no benchmark results")
	}
	var ossl *OpenSSL
	if opensslPath != "" {
		if b, err := os.ReadFile(opensslPath); err == nil {
			if o, ok := ParseOpenSSL(bytes.NewReader(b)); ok {
				ossl = &o
			}
		}
	}
	rep := &report{res: res, ossl: ossl, source: filepath.Base(resultsPath)}
	md := rep.markdown(imgDir != "")
	if imgDir != "" {
		if err := os.MkdirAll(imgDir, 0o755); err != nil {
			return err
		}
		for name, svg := range rep.charts() {
			if err := os.WriteFile(filepath.Join(imgDir, name), []byte(svg), 0o644); err != nil {
				return err
			}
		}
	}
	if docPath == "" {
		_, err := io.WriteString(stdout, md)
		return err
	}
	old, err := os.ReadFile(docPath)
	if err != nil {
		return err
	}
	out, err := replaceBlock(old, md)
	if err != nil {
		return fmt.Errorf("%s: %w", docPath, err)
	}
	return os.WriteFile(docPath, out, 0o644)
}

// replaceBlock puts body between the generated-block markers of doc.
func replaceBlock(doc []byte, body string) ([]byte, error) {
	i := bytes.Index(doc, []byte(beginMarker))
	j := bytes.Index(doc, []byte(endMarker))
	if i < 0 || j < i {
		return nil, errors.New("no " + beginMarker + " ... " + endMarker + " block")
	}
	var out bytes.Buffer
	out.Write(doc[:i+len(beginMarker)])
	out.WriteString("\n")
	out.WriteString(body)
	out.Write(doc[j:])
	return out.Bytes(), nil
}
