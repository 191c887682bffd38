package rsaverify

import (
	"crypto/sha256"
	"fmt"
	"testing"
)

func BenchmarkVerify(b *testing.B) {
	for _, name := range []string{"rsa2048-a", "rsa3072", "rsa4096"} {
		k := fixedKey(b, name)
		digest := sha256.Sum256([]byte("bench"))
		sig := k.signEM(encodeEM(k.fast.Size(), sha256Prefix[:], digest[:]))
		if !k.fast.VerifyPKCS1v15SHA256(&digest, sig) || !stdVerify(k.pub, &digest, sig) {
			b.Fatal("benchmark signature does not verify")
		}
		bits := k.pub.N.BitLen()
		b.Run(fmt.Sprintf("bits=%d/impl=ours", bits), func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if !k.fast.VerifyPKCS1v15SHA256(&digest, sig) {
					b.Fatal("verify failed")
				}
			}
		})
		b.Run(fmt.Sprintf("bits=%d/impl=stdlib", bits), func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if !stdVerify(k.pub, &digest, sig) {
					b.Fatal("verify failed")
				}
			}
		})
		// The paths of other hosts: noadx is the MULQ assembly of amd64
		// CPUs without BMI2/ADX, portable the Go of other architectures.
		for _, p := range []struct {
			name      string
			adx, mulq bool
		}{{"noadx", false, true}, {"portable", false, false}} {
			if p.mulq && !useMULQ {
				continue
			}
			b.Run(fmt.Sprintf("bits=%d/impl=%s", bits, p.name), func(b *testing.B) {
				savedADX, savedMULQ := useADX, useMULQ
				useADX, useMULQ = p.adx, p.mulq
				defer func() { useADX, useMULQ = savedADX, savedMULQ }()
				b.ReportAllocs()
				for b.Loop() {
					if !k.fast.VerifyPKCS1v15SHA256(&digest, sig) {
						b.Fatal("verify failed")
					}
				}
			})
		}
		b.Run(fmt.Sprintf("bits=%d/impl=ours-parallel", bits), func(b *testing.B) {
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					if !k.fast.VerifyPKCS1v15SHA256(&digest, sig) {
						b.Error("verify failed")
						return
					}
				}
			})
		})
		b.Run(fmt.Sprintf("bits=%d/impl=stdlib-parallel", bits), func(b *testing.B) {
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					if !stdVerify(k.pub, &digest, sig) {
						b.Error("verify failed")
						return
					}
				}
			})
		})
	}
}
