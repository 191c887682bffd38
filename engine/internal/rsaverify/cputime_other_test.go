//go:build !linux

package rsaverify

func threadCPU() (int64, bool) { return 0, false }
