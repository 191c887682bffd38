//go:build jwtgate_inject_cold

package bench

// This file exists to prove that `make bench-gate` catches a regression:
// built with -tags jwtgate_inject_cold (make bench-gate HEAD_TAGS=...), the
// cold verify benchmarks do 10% more work. It is a _test.go file of the
// benchmark package, so no binary ever contains it.
func init() { injectColdPercent = 10 }
