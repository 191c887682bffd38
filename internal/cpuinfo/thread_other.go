//go:build !linux

package cpuinfo

// ThreadCPU is not available on this system.
func ThreadCPU() (int64, bool) { return 0, false }
