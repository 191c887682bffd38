//go:build unix

package bench

import (
	"syscall"
	"testing"
	"time"
)

// processCPU returns the CPU time (user + system) this process has used.
func processCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// reportCPU reports the process's CPU time per op since cpu0 as cpu-ns/op.
// Unlike ns/op (wall time) it does not grow when other processes take the
// cores, so `make bench-gate` decides on it on a shared machine; it
// includes everything the process did meanwhile (GC, other goroutines).
func reportCPU(b *testing.B, cpu0 time.Duration) {
	if b.N > 0 && cpu0 > 0 {
		b.ReportMetric(float64(processCPU()-cpu0)/float64(b.N), "cpu-ns/op")
	}
}
