//go:build !unix

package bench

import (
	"testing"
	"time"
)

// processCPU is not measured on this platform: no cpu-ns/op is reported.
func processCPU() time.Duration { return 0 }

func reportCPU(*testing.B, time.Duration) {}
