package rsaverify

import "syscall"

// threadCPU returns the CPU time (user + system) the calling OS thread has
// used, in nanoseconds (getrusage RUSAGE_THREAD).
func threadCPU() (int64, bool) {
	var ru syscall.Rusage
	if err := syscall.Getrusage(1 /* RUSAGE_THREAD */, &ru); err != nil {
		return 0, false
	}
	return ru.Utime.Nano() + ru.Stime.Nano(), true
}
