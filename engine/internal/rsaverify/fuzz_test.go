package rsaverify

import (
	"bytes"
	"crypto/sha256"
	"testing"
)

// FuzzVerifyPKCS1v15SHA256 compares the verifier with crypto/rsa. mode
// selects the key and whether raw is used as the signature itself or as an
// encoded message that is first "signed" with the private key, so the fuzzer
// explores the EM comparison, not just random public operations.
func FuzzVerifyPKCS1v15SHA256(f *testing.F) {
	fuzzKeys := []*testKey{
		fixedKey(f, "rsa2048-a"),
		fixedKey(f, "rsa1024"),
		multiPrimeKey(f, 2049, 65537, 7),
		multiPrimeKey(f, 1031, 3, 7),
	}
	for i, k := range fuzzKeys {
		digest := sha256.Sum256([]byte("seed"))
		em := encodeEM(k.fast.Size(), sha256Prefix[:], digest[:])
		f.Add(byte(2*i), digest[:], k.signEM(em)) // valid signature
		f.Add(byte(2*i+1), digest[:], em)         // valid EM
		bad := bytes.Clone(em)
		bad[len(bad)-40] ^= 1
		f.Add(byte(2*i+1), digest[:], bad)
		f.Add(byte(2*i), digest[:], []byte{1, 2, 3})
		f.Add(byte(2*i)|0x80, digest[:], k.signEM(em)) // portable path
		f.Add(byte(2*i+1)|0x80, digest[:], bad)
		f.Add(byte(2*i)|0xc0, digest[:], k.signEM(em)) // portable Go
		f.Add(byte(2*i+1)|0xc0, digest[:], bad)
	}
	f.Fuzz(func(t *testing.T, mode byte, d []byte, raw []byte) {
		k := fuzzKeys[int(mode&0x3f>>1)%len(fuzzKeys)]
		var digest [32]byte
		copy(digest[:], d)
		sig := raw
		if mode&1 == 1 {
			// raw is the encoded message: left-pad/truncate to Size().
			em := make([]byte, k.fast.Size())
			if len(raw) > len(em) {
				raw = raw[:len(em)]
			}
			copy(em[len(em)-len(raw):], raw)
			sig = k.signEM(em)
		}
		// Bits 7 and 6 of mode switch off the ADX and MULQ assembly, so
		// every path is fuzzed against crypto/rsa.
		savedADX, savedMULQ := useADX, useMULQ
		useADX = savedADX && mode&0x80 == 0
		useMULQ = savedMULQ && mode&0x40 == 0
		got := k.fast.VerifyPKCS1v15SHA256(&digest, sig)
		useADX, useMULQ = savedADX, savedMULQ
		if std := stdVerify(k.pub, &digest, sig); got != std {
			t.Fatalf("ours=%v crypto/rsa=%v key=%s digest=%x sig=%x", got, std, k.name, digest, sig)
		}
	})
}
