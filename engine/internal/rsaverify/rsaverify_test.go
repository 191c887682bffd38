package rsaverify

import (
	"bytes"
	"crypto/rsa"
	"crypto/sha256"
	"math/big"
	mrand "math/rand/v2"
	"runtime"
	"testing"
)

// DigestInfo prefixes of other hashes (RFC 8017 9.2 note 1).
var otherPrefixes = map[string][]byte{
	"sha1":   {0x30, 0x21, 0x30, 0x09, 0x06, 0x05, 0x2b, 0x0e, 0x03, 0x02, 0x1a, 0x05, 0x00, 0x04, 0x14},
	"sha224": {0x30, 0x2d, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x04, 0x05, 0x00, 0x04, 0x1c},
	"sha384": {0x30, 0x41, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x02, 0x05, 0x00, 0x04, 0x30},
	"sha512": {0x30, 0x51, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x03, 0x05, 0x00, 0x04, 0x40},
	// SHA-256 with the NULL parameters omitted
	"sha256-noparams": {0x30, 0x2f, 0x30, 0x0b, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x01, 0x04, 0x20},
	"none":            {},
}

// both runs f on every path this CPU has: the ADX assembly, the MULQ
// assembly (amd64) and the portable Go.
func both(t *testing.T, f func(t *testing.T)) {
	t.Helper()
	savedADX, savedMULQ := useADX, useMULQ
	defer func() { useADX, useMULQ = savedADX, savedMULQ }()
	if savedADX {
		t.Run("asm", func(t *testing.T) { useADX, useMULQ = true, savedMULQ; f(t) })
	}
	if savedMULQ {
		t.Run("mulq", func(t *testing.T) { useADX, useMULQ = false, true; f(t) })
	}
	t.Run("generic", func(t *testing.T) { useADX, useMULQ = false, false; f(t) })
}

// scale returns n for the default path and an eighth of it when a slower
// path is forced (two more paths run each test again, and they are much
// slower under -race): the package's tests then cost about what they did
// with one extra path at a quarter.
func scale(n int) int {
	if !useADX && hasBMI2ADX() || !useMULQ && runtime.GOARCH == "amd64" {
		return (n + 7) / 8
	}
	return n
}

// check asserts ours == crypto/rsa, and that both equal want when want is
// given (so the differential test cannot pass vacuously).
func check(t *testing.T, k *testKey, what string, digest *[32]byte, sig []byte, want ...bool) {
	t.Helper()
	got := k.fast.VerifyPKCS1v15SHA256(digest, sig)
	std := stdVerify(k.pub, digest, sig)
	if got != std {
		t.Fatalf("%s: %s: ours=%v crypto/rsa=%v (sig %x)", k.name, what, got, std, sig)
	}
	if len(want) > 0 && got != want[0] {
		t.Fatalf("%s: %s: got %v, want %v", k.name, what, got, want[0])
	}
}

func TestNewRejects(t *testing.T) {
	k := fixedKey(t, "rsa2048-a")
	n := k.pub.N
	even := new(big.Int).Add(n, big.NewInt(1))
	small := new(big.Int).Rsh(n, 1100) // 948 bits
	small.SetBit(small, 0, 1)
	huge := new(big.Int).Lsh(big.NewInt(1), MaxBits)
	huge.Add(huge, big.NewInt(1))
	for name, pub := range map[string]*rsa.PublicKey{
		"nil N":     {E: 65537},
		"even N":    {N: even, E: 65537},
		"small N":   {N: small, E: 65537},
		"huge N":    {N: huge, E: 65537},
		"E=1":       {N: n, E: 1},
		"E even":    {N: n, E: 65536},
		"E too big": {N: n, E: 1 << 31},
		"E<0":       {N: n, E: -3},
	} {
		if _, err := New(pub); err == nil {
			t.Errorf("%s: New accepted the key", name)
		}
	}
	if _, err := New(nil); err == nil {
		t.Error("New(nil) succeeded")
	}
	if got, want := k.fast.Size(), 256; got != want {
		t.Errorf("Size = %d, want %d", got, want)
	}
}

func TestValidSignatures(t *testing.T) {
	keys := allKeys(t)
	both(t, func(t *testing.T) {
		r := mrand.New(mrand.NewPCG(1, 2))
		for _, k := range keys {
			count := scale(120)
			if k.pub.N.BitLen() > 2100 {
				count = scale(40)
			}
			if k.pub.N.BitLen() > 4200 {
				count = scale(8)
			}
			for i := 0; i < count; i++ {
				var digest [32]byte
				for j := range digest {
					digest[j] = byte(r.Uint32())
				}
				sig := k.signEM(encodeEM(k.fast.Size(), sha256Prefix[:], digest[:]))
				check(t, k, "valid", &digest, sig, true)
				// wrong digest
				other := digest
				other[r.IntN(32)] ^= 1 << r.IntN(8)
				check(t, k, "wrong digest", &other, sig, false)
			}
		}
	})
}

func TestSignedByCryptoRSA(t *testing.T) {
	// Signatures made by crypto/rsa itself with the fixed keys.
	both(t, func(t *testing.T) {
		for _, name := range []string{"rsa1024", "rsa2048-a", "rsa3072", "rsa4096"} {
			k := fixedKey(t, name)
			priv := enginetestKey(name)
			for i := 0; i < 5; i++ {
				digest := sha256.Sum256([]byte{byte(i), 'x'})
				sig, err := rsa.SignPKCS1v15(nil, priv, cryptoSHA256, digest[:])
				if err != nil {
					t.Fatal(err)
				}
				check(t, k, "crypto/rsa signature", &digest, sig, true)
			}
		}
	})
}

func TestBitFlips(t *testing.T) {
	keys := allKeys(t)
	both(t, func(t *testing.T) {
		for _, k := range keys {
			bitLen := k.pub.N.BitLen()
			if bitLen > 4200 {
				continue // covered by other tests; too slow through crypto/rsa's generic path
			}
			digest := sha256.Sum256([]byte(k.name))
			sig := k.signEM(encodeEM(k.fast.Size(), sha256Prefix[:], digest[:]))
			check(t, k, "unflipped", &digest, sig, true)
			step := 1
			if bitLen > 2100 {
				step = 23 // spread over the whole signature
			}
			if scale(4) != 4 {
				step = 13
			}
			for bit := 0; bit < len(sig)*8; bit += step {
				mut := bytes.Clone(sig)
				mut[bit/8] ^= 0x80 >> (bit % 8)
				check(t, k, "flipped sig bit", &digest, mut, false)
			}
			for bit := 0; bit < 256; bit++ {
				d := digest
				d[bit/8] ^= 0x80 >> (bit % 8)
				check(t, k, "flipped digest bit", &d, sig, false)
			}
		}
	})
}

func TestEdgeSignatures(t *testing.T) {
	keys := allKeys(t)
	both(t, func(t *testing.T) {
		r := mrand.New(mrand.NewPCG(3, 4))
		for _, k := range keys {
			size := k.fast.Size()
			n := k.pub.N
			digest := sha256.Sum256([]byte("edge"))
			fill := func(v *big.Int) []byte { return v.FillBytes(make([]byte, size)) }
			one := big.NewInt(1)
			for what, v := range map[string]*big.Int{
				"s=0":   big.NewInt(0),
				"s=1":   one,
				"s=2":   big.NewInt(2),
				"s=N-1": new(big.Int).Sub(n, one),
				"s=N":   n,
				"s=N+1": new(big.Int).Add(n, one),
				"s=2^k-1": new(big.Int).Sub(
					new(big.Int).Lsh(one, uint(8*size)), one),
			} {
				check(t, k, what, &digest, fill(v), false)
			}
			// A valid signature plus N (still size bytes when it fits) must fail.
			sig := k.signEM(encodeEM(size, sha256Prefix[:], digest[:]))
			check(t, k, "valid", &digest, sig, true)
			plusN := new(big.Int).Add(new(big.Int).SetBytes(sig), n)
			if plusN.BitLen() <= 8*size {
				check(t, k, "valid+N", &digest, fill(plusN), false)
			}
			// Wrong lengths.
			check(t, k, "empty", &digest, nil, false)
			check(t, k, "short", &digest, sig[1:], false)
			check(t, k, "long (leading zero)", &digest, append([]byte{0}, sig...), false)
			check(t, k, "long (trailing byte)", &digest, append(bytes.Clone(sig), 0), false)
			// Random signatures, both raw bytes and reduced mod N.
			for i := 0; i < scale(20); i++ {
				b := make([]byte, size)
				for j := range b {
					b[j] = byte(r.Uint32())
				}
				check(t, k, "random bytes", &digest, b, false)
				v := new(big.Int).Mod(new(big.Int).SetBytes(b), n)
				check(t, k, "random mod N", &digest, fill(v), false)
			}
		}
	})
}

func TestForgedEncodings(t *testing.T) {
	keys := allKeys(t)
	both(t, func(t *testing.T) {
		for _, k := range keys {
			if k.pub.N.BitLen() > 4200 && (k.name != "multi16384-e65537" || scale(4) != 4) {
				continue // the largest key once (pooled scratch path), on the default path
			}
			size := k.fast.Size()
			digest := sha256.Sum256([]byte("forged " + k.name))
			good := encodeEM(size, sha256Prefix[:], digest[:])
			try := func(what string, em []byte) {
				t.Helper()
				if len(em) != size {
					t.Fatalf("%s: bad test EM length %d", what, len(em))
				}
				want := bytes.Equal(em, good)
				check(t, k, what, &digest, k.signEM(em), want)
			}
			mod := func(f func(em []byte)) []byte {
				em := bytes.Clone(good)
				f(em)
				return em
			}
			try("good", good)
			try("0x00 0x02", mod(func(em []byte) { em[1] = 0x02 }))
			try("0x00 0x00", mod(func(em []byte) { em[1] = 0x00 }))
			try("separator missing", mod(func(em []byte) { em[size-52] = 0xff }))
			try("separator 0x01", mod(func(em []byte) { em[size-52] = 0x01 }))
			try("first FF zero", mod(func(em []byte) { em[2] = 0x00 }))
			try("last FF zero", mod(func(em []byte) { em[size-53] = 0x00 }))
			try("middle FF 0xfe", mod(func(em []byte) { em[size/2] = 0xfe }))
			try("leading 0x01", mod(func(em []byte) { em[0] = 0x01 }))
			// Padding one byte short, trailing garbage after the digest.
			try("short padding + trailing garbage", mod(func(em []byte) {
				copy(em[size-53:], append(append([]byte{0}, sha256Prefix[:]...), digest[:]...))
				em[size-1] = 0x42
			}))
			// Padding one byte short, extra zero before the DigestInfo.
			try("short padding + extra zero", mod(func(em []byte) {
				copy(em[size-53:], []byte{0, 0})
			}))
			// Padding one byte long, digest truncated.
			try("long padding", mod(func(em []byte) {
				em[size-52] = 0xff
				copy(em[size-51:], append(append([]byte{0}, sha256Prefix[:]...), digest[:31]...))
			}))
			for name, p := range otherPrefixes {
				dlen := 32
				switch name {
				case "sha1":
					dlen = 20
				case "sha224":
					dlen = 28
				case "sha384":
					dlen = 48
				case "sha512":
					dlen = 64
				}
				d := bytes.Repeat(digest[:], 2)[:dlen]
				try("prefix "+name, encodeEM(size, p, d))
			}
			for i := 0; i < len(sha256Prefix); i++ {
				try("DigestInfo byte flipped", mod(func(em []byte) { em[size-51+i] ^= 0x01 }))
			}
			for i := 0; i < 32; i++ {
				try("digest byte flipped", mod(func(em []byte) { em[size-32+i] ^= 0x80 }))
			}
			try("all zero", make([]byte, size))
			try("EM=1", mod(func(em []byte) { clear(em); em[size-1] = 1 }))
		}
	})
}
