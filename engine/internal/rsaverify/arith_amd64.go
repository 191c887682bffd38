package rsaverify

// Three paths, chosen once: the MULX/ADCX/ADOX assembly (useADX) on CPUs
// with BMI2 and ADX, otherwise a MULQ assembly loop (useMULQ), otherwise
// (tests only, on amd64) the portable Go of arith.go. Tests clear the flags
// to force the slower paths.
var (
	useADX  = hasBMI2ADX()
	useMULQ = true
)

// hasBMI2ADX reports whether the CPU supports the BMI2 and ADX extensions.
func hasBMI2ADX() bool

// addMulVVWADX is addMulVVW using MULX, ADCX and ADOX. len(z) == len(x) > 0.
//
//go:noescape
func addMulVVWADX(z, x []uint64, y uint64) (c uint64)

// addMulVVWMULQ is addMulVVW with MULQ and one carry chain, for CPUs
// without BMI2/ADX. len(z) == len(x) > 0.
//
//go:noescape
func addMulVVWMULQ(z, x []uint64, y uint64) (c uint64)

func addMulVVW(z, x []uint64, y uint64) uint64 {
	if useADX {
		return addMulVVWADX(z, x, y)
	}
	if useMULQ {
		return addMulVVWMULQ(z, x, y)
	}
	return addMulVVWGeneric(z, x, y)
}

// mulRowsADX and reduceADX run whole Montgomery passes in assembly; see
// arith_amd64.s. They need len(x) == len(n) a positive multiple of 8.
//
//go:noescape
func mulRowsADX(t, x, y []uint64)

//go:noescape
func reduceADX(t, n []uint64, n0inv uint64) (c uint64)

// sqrCrossADX and sqrDiagADX are the two passes of a dedicated squaring
// (the cross products once, then doubling plus the squares); same length
// requirements as mulRowsADX.
//
//go:noescape
func sqrCrossADX(t, x []uint64)

//go:noescape
func sqrDiagADX(t, x []uint64)

// fullASM reports whether the whole-pass assembly applies to nl limbs.
func fullASM(nl int) bool { return useADX && nl%8 == 0 }
