package loadgen

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	vegeta "github.com/tsenart/vegeta/v12/lib"
	"github.com/tsenart/vegeta/v12/lib/plot"
)

// Files written into an attack's output directory.
const (
	ResultsFile = "results.bin"  // Vegeta binary results: vegeta report < results.bin
	SummaryFile = "summary.json" // the Report as JSON
	PlotFile    = "plot.html"    // Vegeta's HTML latency plot
)

// PlotLabel labels a result for the plot: "as expected" or "mismatch/error".
func PlotLabel(r *vegeta.Result) string {
	if r.Error != "" {
		return "mismatch or error"
	}
	return "as expected"
}

// WritePlot reads Vegeta results from r and writes Vegeta's HTML latency
// plot (lib/plot) to w.
func WritePlot(w io.Writer, r io.Reader, title string) error {
	p := plot.New(plot.Title(title), plot.Downsample(4000), plot.Label(PlotLabel))
	dec := vegeta.NewDecoder(bufio.NewReader(r))
	for {
		var res vegeta.Result
		if err := dec.Decode(&res); err != nil {
			if errors.Is(err, io.EOF) {
				break
			}
			return err
		}
		if err := p.Add(&res); err != nil {
			return err
		}
	}
	p.Close()
	_, err := p.WriteTo(w)
	return err
}

// WriteOutputs writes the summary and, from the results file already in
// dir, the HTML plot.
func WriteOutputs(dir string, rep *Report) error {
	f, err := os.Create(filepath.Join(dir, SummaryFile))
	if err != nil {
		return err
	}
	if err := rep.WriteJSON(f); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	in, err := os.Open(filepath.Join(dir, ResultsFile))
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.Create(filepath.Join(dir, PlotFile))
	if err != nil {
		return err
	}
	if err := WritePlot(out, in, fmt.Sprintf("jwtgate loadgen: %s for %s (%d requests)", rep.Rate, rep.Duration.Round(time.Second), rep.Requests)); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}
