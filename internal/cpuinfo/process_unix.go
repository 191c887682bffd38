//go:build unix

package cpuinfo

import (
	"syscall"
	"time"
)

// ProcessCPU returns the CPU time (user + system) the whole process has
// used (getrusage RUSAGE_SELF), and false where the system cannot tell.
func ProcessCPU() (time.Duration, bool) {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0, false
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano()), true
}
