package cpuinfo

import (
	"flag"
	"fmt"
	"runtime"
	"testing"
)

// CPUTimer measures a benchmark's CPU time on a locked OS thread. Start it
// before the loop, Stop it after with the number of operations: it reports
// cpu-ns/op beside the wall-time ns/op.
type CPUTimer struct {
	b  *testing.B
	c0 int64
	ok bool
}

// StartCPUTimer locks the goroutine to its OS thread and reads its CPU time.
func StartCPUTimer(b *testing.B) *CPUTimer {
	runtime.LockOSThread()
	c0, ok := ThreadCPU()
	return &CPUTimer{b: b, c0: c0, ok: ok}
}

// Stop reports cpu-ns/op over n operations and unlocks the thread.
func (t *CPUTimer) Stop(n int) {
	c1, ok := ThreadCPU()
	runtime.UnlockOSThread()
	if t.ok && ok && n > 0 {
		t.b.ReportMetric(float64(c1-t.c0)/float64(n), "cpu-ns/op")
	}
}

// PrintWhenBenchmarking prints the CPU identity (benchstat configuration
// lines) when the test binary was asked to run benchmarks, so that every
// results file says which CPU it was measured on. Call it from TestMain.
func PrintWhenBenchmarking() {
	if !flag.Parsed() {
		flag.Parse()
	}
	if f := flag.Lookup("test.bench"); f != nil && f.Value.String() != "" {
		fmt.Print(Read().Config())
	}
}
