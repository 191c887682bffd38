//go:build !unix

package cpuinfo

import "time"

// ProcessCPU is not available on this system.
func ProcessCPU() (time.Duration, bool) { return 0, false }
