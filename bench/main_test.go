package bench

import (
	"os"
	"testing"

	"github.com/jwtgate/jwtgate/internal/cpuinfo"
)

// TestMain prints the CPU identity (benchstat configuration lines) before
// benchmarks, so that every results file says which CPU it was measured on.
func TestMain(m *testing.M) {
	cpuinfo.PrintWhenBenchmarking()
	os.Exit(m.Run())
}
