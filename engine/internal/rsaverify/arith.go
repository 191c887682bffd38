package rsaverify

import "math/bits"

// addMulVVWGeneric sets z += x·y over len(z) == len(x) limbs and returns the
// carry limb.
func addMulVVWGeneric(z, x []uint64, y uint64) (c uint64) {
	x = x[:len(z)]
	for i := range z {
		hi, lo := bits.Mul64(x[i], y)
		var cc uint64
		lo, cc = bits.Add64(lo, z[i], 0)
		hi += cc
		lo, cc = bits.Add64(lo, c, 0)
		hi += cc
		z[i] = lo
		c = hi
	}
	return c
}
