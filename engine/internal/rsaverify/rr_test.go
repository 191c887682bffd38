package rsaverify

import (
	"crypto/rand"
	"crypto/rsa"
	"math/big"
	"testing"
)

// TestRRMatchesBigInt: the R² mod N that New computes by doubling and
// Montgomery squaring equals big.Int's 2^(2w) mod N, for odd moduli of
// every limb count and of bit lengths that are and are not limb multiples,
// on every arithmetic path.
func TestRRMatchesBigInt(t *testing.T) {
	both(t, func(t *testing.T) {
		{
			for _, bitLen := range []int{1024, 1025, 1087, 2047, 2048, 2049, 2111, 3072, 3100, 4096, 4159, 8192, 16384} {
				for range 4 {
					n, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), uint(bitLen-1)))
					if err != nil {
						t.Fatal(err)
					}
					n.SetBit(n, bitLen-1, 1).SetBit(n, 0, 1)
					k, err := New(&rsa.PublicKey{N: n, E: 65537})
					if err != nil {
						t.Fatal(err)
					}
					nl := len(k.n)
					want := new(big.Int).Lsh(big.NewInt(1), uint(2*64*nl))
					want.Mod(want, n)
					got := make([]uint64, nl)
					fromBytes(got, want.FillBytes(make([]byte, nl*8)))
					for i := range got {
						if got[i] != k.rr[i] {
							t.Fatalf("%d-bit modulus: R² mod N differs from big.Int at limb %d", bitLen, i)
						}
					}
				}
			}
		}
	})
}
