package rsaverify

import (
	"math/big"
	mrand "math/rand/v2"
	"testing"
)

// TestMontgomeryOps checks the dedicated squaring and the multiplication
// against math/big (x·y·R⁻¹ mod N) on random and extreme operands, on both
// paths and every test key size.
func TestMontgomeryOps(t *testing.T) {
	both(t, func(t *testing.T) {
		r := mrand.New(mrand.NewPCG(12, 1))
		for _, k := range allKeys(t) {
			nl := len(k.fast.n)
			N := k.pub.N
			R := new(big.Int).Lsh(big.NewInt(1), uint(64*nl))
			rInv := new(big.Int).ModInverse(R, N)
			nm1 := new(big.Int).Sub(N, big.NewInt(1))
			ops := []*big.Int{big.NewInt(0), big.NewInt(1), nm1, new(big.Int).Rsh(N, 1)}
			for i := 0; i < scale(8); i++ {
				b := make([]byte, k.fast.size)
				for j := range b {
					b[j] = byte(r.Uint32())
				}
				ops = append(ops, new(big.Int).Mod(new(big.Int).SetBytes(b), N))
			}
			t_ := make([]uint64, 2*nl)
			z := make([]uint64, nl)
			for i, x := range ops {
				y := ops[(i*7+3)%len(ops)]
				xl, yl := limbs(x, nl), limbs(y, nl)
				want := new(big.Int).Mul(x, x)
				want.Mul(want, rInv).Mod(want, N)
				k.fast.montSqr(z, xl, t_)
				if got := fromLimbs(z); got.Cmp(want) != 0 {
					t.Fatalf("%s: montSqr(%x) = %x, want %x", k.name, x, got, want)
				}
				want.Mul(x, y).Mul(want, rInv).Mod(want, N)
				k.fast.montMul(z, xl, yl, t_)
				if got := fromLimbs(z); got.Cmp(want) != 0 {
					t.Fatalf("%s: montMul(%x, %x) = %x, want %x", k.name, x, y, got, want)
				}
			}
		}
	})
}

func limbs(x *big.Int, nl int) []uint64 {
	z := make([]uint64, nl)
	fromBytes(z, x.FillBytes(make([]byte, 8*nl)))
	return z
}

func fromLimbs(z []uint64) *big.Int {
	x := new(big.Int)
	for i := len(z) - 1; i >= 0; i-- {
		x.Lsh(x, 64).Or(x, new(big.Int).SetUint64(z[i]))
	}
	return x
}
