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
//
// With JWTGATE_BENCH_GATEWAY_CHILD=1 the binary is instead the jwtgate
// server process that BenchmarkGateway measures.
func TestMain(m *testing.M) {
	if os.Getenv(envGatewayChild) == "1" {
		os.Exit(gatewayChildMain())
	}
	flag.Parse()
	if f := flag.Lookup("test.bench"); f != nil && f.Value.String() != "" {
		fmt.Print(cpuinfo.Read().Config())
	}
	code := m.Run()
	stopGatewayChild()
	os.Exit(code)
}
