package bench

import (
	"flag"
	"fmt"
	"os"
	"testing"

	"github.com/jwtgate/jwtgate/internal/cpuinfo"
)

// TestMain prints the CPU identity (benchstat configuration lines) before
// benchmarks, so that every results file says which CPU it was measured on.
func TestMain(m *testing.M) {
	flag.Parse()
	if f := flag.Lookup("test.bench"); f != nil && f.Value.String() != "" {
		fmt.Print(cpuinfo.Read().Config())
	}
	os.Exit(m.Run())
}
