//go:build !amd64

package rsaverify

// useADX is always false off amd64.
var useADX = false

func addMulVVW(z, x []uint64, y uint64) uint64 { return addMulVVWGeneric(z, x, y) }
