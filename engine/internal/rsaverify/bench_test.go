package rsaverify

import (
	"crypto/sha256"
	"fmt"
	"testing"

	"github.com/jwtgate/jwtgate/internal/cpuinfo"
)

// serial runs verify in a b.Loop on a locked OS thread and reports, beside
// ns/op (wall time), cpu-ns/op: the thread's CPU time per verification. On
// a machine shared with other work the wall time includes time spent
// waiting for a core; the CPU time does not, and it is what `openssl speed`
// reports by default, so bench-rsa compares the two on cpu-ns/op.
func serial(b *testing.B, verify func() bool) {
	b.ReportAllocs()
	t := cpuinfo.StartCPUTimer(b)
	n := 0
	for b.Loop() {
		if !verify() {
			b.Fatal("verify failed")
		}
		n++
	}
	t.Stop(n)
}

func BenchmarkVerify(b *testing.B) {
	for _, name := range []string{"rsa2048-a", "rsa3072", "rsa4096"} {
		k := fixedKey(b, name)
		digest := sha256.Sum256([]byte("bench"))
		sig := k.signEM(encodeEM(k.fast.Size(), sha256Prefix[:], digest[:]))
		if !k.fast.VerifyPKCS1v15SHA256(&digest, sig) || !stdVerify(k.pub, &digest, sig) {
			b.Fatal("benchmark signature does not verify")
		}
		bits := k.pub.N.BitLen()
		ours := func() bool { return k.fast.VerifyPKCS1v15SHA256(&digest, sig) }
		b.Run(fmt.Sprintf("bits=%d/impl=ours", bits), func(b *testing.B) { serial(b, ours) })
		b.Run(fmt.Sprintf("bits=%d/impl=stdlib", bits), func(b *testing.B) {
			serial(b, func() bool { return stdVerify(k.pub, &digest, sig) })
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
				serial(b, ours)
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
