//go:build !amd64

package rsaverify

// useADX is always false off amd64: only the portable path exists.
var (
	useADX  = false
	useMULQ = false
)

func addMulVVW(z, x []uint64, y uint64) uint64 { return addMulVVWGeneric(z, x, y) }

func fullASM(int) bool { return false }

func mulRowsADX(t, x, y []uint64) { panic("unreachable") }

func reduceADX(t, n []uint64, n0inv uint64) uint64 { panic("unreachable") }

func sqrCrossADX(t, x []uint64) { panic("unreachable") }

func sqrDiagADX(t, x []uint64) { panic("unreachable") }

func hasBMI2ADX() bool { return false }
