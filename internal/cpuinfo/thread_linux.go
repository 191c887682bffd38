package cpuinfo

import "syscall"

// ThreadCPU returns the CPU time (user + system) the calling OS thread has
// used, in nanoseconds (getrusage RUSAGE_THREAD), and false where the
// system cannot tell. Benchmarks lock their OS thread and report the
// difference per operation: unlike wall time, it leaves out the time spent
// waiting for a core on a machine shared with other work.
func ThreadCPU() (int64, bool) {
	var ru syscall.Rusage
	if err := syscall.Getrusage(1 /* RUSAGE_THREAD */, &ru); err != nil {
		return 0, false
	}
	return ru.Utime.Nano() + ru.Stime.Nano(), true
}
