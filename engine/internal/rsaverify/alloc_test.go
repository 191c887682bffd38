//go:build !race

package rsaverify

import (
	"crypto/sha256"
	"testing"
)

func TestZeroAllocs(t *testing.T) {
	for _, k := range allKeys(t) {
		digest := sha256.Sum256([]byte("allocs"))
		sig := k.signEM(encodeEM(k.fast.Size(), sha256Prefix[:], digest[:]))
		bad := append([]byte(nil), sig...)
		bad[3] ^= 1
		for _, s := range [][]byte{sig, bad, sig[1:]} {
			if n := testing.AllocsPerRun(20, func() { k.fast.VerifyPKCS1v15SHA256(&digest, s) }); n != 0 {
				t.Errorf("%s: %v allocs per verify, want 0", k.name, n)
			}
		}
		if !k.fast.VerifyPKCS1v15SHA256(&digest, sig) {
			t.Errorf("%s: valid signature rejected", k.name)
		}
	}
}
