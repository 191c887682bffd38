package rsaverify

import (
	"crypto"
	"crypto/rsa"
	"fmt"
	"math/big"
	mrand "math/rand/v2"
	"sync"
	"testing"

	"github.com/jwtgate/jwtgate/engine/enginetest"
)

// testKey is a public key with a way to compute raw private operations
// (s = m^d mod N), so tests can forge any encoded message.
type testKey struct {
	name string
	pub  *rsa.PublicKey
	fast *PublicKey
	// private operation by CRT over the prime factors
	primes []*big.Int
	dps    []*big.Int // d mod (p-1)
	coeffs []*big.Int // (N/p)·((N/p)⁻¹ mod p) mod N
}

// raw returns m^d mod N as a Size()-byte big-endian signature.
func (k *testKey) raw(m *big.Int) []byte {
	s := new(big.Int)
	t := new(big.Int)
	for i, p := range k.primes {
		t.Mod(m, p)
		t.Exp(t, k.dps[i], p)
		t.Mul(t, k.coeffs[i])
		s.Add(s, t)
	}
	s.Mod(s, k.pub.N)
	return s.FillBytes(make([]byte, (k.pub.N.BitLen()+7)/8))
}

// signEM returns the signature whose public operation yields em (em must be
// Size() bytes; if em ≥ N the public operation yields em mod N instead).
func (k *testKey) signEM(em []byte) []byte { return k.raw(new(big.Int).SetBytes(em)) }

func newTestKey(t testing.TB, name string, n *big.Int, e int, primes []*big.Int) *testKey {
	t.Helper()
	one := big.NewInt(1)
	lambda := big.NewInt(1)
	for _, p := range primes {
		pm1 := new(big.Int).Sub(p, one)
		g := new(big.Int).GCD(nil, nil, lambda, pm1)
		lambda.Mul(lambda, pm1)
		lambda.Div(lambda, g)
	}
	d := new(big.Int).ModInverse(big.NewInt(int64(e)), lambda)
	if d == nil {
		t.Fatalf("%s: e not invertible", name)
	}
	k := &testKey{name: name, pub: &rsa.PublicKey{N: n, E: e}, primes: primes}
	for _, p := range primes {
		k.dps = append(k.dps, new(big.Int).Mod(d, new(big.Int).Sub(p, one)))
		mp := new(big.Int).Div(n, p)
		inv := new(big.Int).ModInverse(new(big.Int).Mod(mp, p), p)
		c := new(big.Int).Mul(mp, inv)
		k.coeffs = append(k.coeffs, c.Mod(c, n))
	}
	fast, err := New(k.pub)
	if err != nil {
		t.Fatalf("%s: New: %v", name, err)
	}
	k.fast = fast
	return k
}

// fixedKey wraps one of enginetest's fixed two-prime keys.
func fixedKey(t testing.TB, name string) *testKey {
	priv := enginetest.Key(name)
	return newTestKey(t, name, priv.N, priv.E, priv.Primes)
}

// randPrime returns a deterministic pseudo-random prime of exactly bits bits
// with gcd(e, p-1) == 1.
func randPrime(r *mrand.Rand, bits, e int) *big.Int {
	buf := make([]byte, (bits+7)/8)
	p := new(big.Int)
	pm1 := new(big.Int)
	g := new(big.Int)
	for {
		for i := range buf {
			buf[i] = byte(r.Uint32())
		}
		p.SetBytes(buf)
		// exact bit length, odd
		for p.BitLen() > bits {
			p.SetBit(p, p.BitLen()-1, 0)
		}
		p.SetBit(p, bits-1, 1)
		p.SetBit(p, 0, 1)
		if !p.ProbablyPrime(20) {
			continue
		}
		pm1.Sub(p, big.NewInt(1))
		if g.GCD(nil, nil, pm1, big.NewInt(int64(e))).Cmp(big.NewInt(1)) == 0 {
			return new(big.Int).Set(p)
		}
	}
}

// multiPrimeKey builds a deterministic key of exactly bits bits whose modulus
// is a product of many distinct ~128-bit primes. crypto/rsa's public
// operation does not care about the factorisation, and small primes make key
// generation and signing fast for any size, odd sizes included.
func multiPrimeKey(t testing.TB, bits, e int, seed uint64) *testKey {
	r := mrand.New(mrand.NewChaCha8([32]byte{byte(seed), byte(seed >> 8), byte(bits), byte(bits >> 8), byte(e)}))
	for {
		n := big.NewInt(1)
		var primes []*big.Int
		seen := map[string]bool{}
		add := func(p *big.Int) bool {
			if seen[p.String()] {
				return false
			}
			seen[p.String()] = true
			primes = append(primes, p)
			n.Mul(n, p)
			return true
		}
		for bits-n.BitLen() >= 256 {
			add(randPrime(r, 128, e))
		}
		rest := bits - n.BitLen()
		half := rest / 2
		add(randPrime(r, half, e))
		add(randPrime(r, rest-half, e))
		if n.BitLen() == bits && len(primes) == len(seen) {
			return newTestKey(t, fmt.Sprintf("multi%d-e%d", bits, e), n, e, primes)
		}
	}
}

var (
	keysOnce sync.Once
	keys     []*testKey
)

// allKeys returns the fixed test keys plus multi-prime keys of odd and
// large sizes and with other public exponents.
func allKeys(t testing.TB) []*testKey {
	keysOnce.Do(func() {
		for _, name := range []string{"rsa1024", "rsa2048-a", "rsa2048-b", "rsa2048-c", "rsa3072", "rsa4096"} {
			keys = append(keys, fixedKey(t, name))
		}
		for _, c := range []struct{ bits, e int }{
			{1024, 65537}, {1025, 65537}, {2047, 65537}, {2049, 65537}, {2111, 65537},
			{3071, 65537}, {3073, 65537}, {4095, 65537}, {4097, 65537}, {4160, 65537},
			{8192, 65537}, {16384, 65537},
			{2048, 3}, {2049, 17}, {3072, 1<<31 - 1}, {2048, 0x5555_5555},
		} {
			keys = append(keys, multiPrimeKey(t, c.bits, c.e, 1))
		}
	})
	return keys
}

// stdVerify is the oracle.
func stdVerify(pub *rsa.PublicKey, digest *[32]byte, sig []byte) bool {
	return rsa.VerifyPKCS1v15(pub, crypto.SHA256, digest[:], sig) == nil
}

// encodeEM builds 0x00 0x01 FF..FF 0x00 || prefix || digest of size bytes.
func encodeEM(size int, prefix, digest []byte) []byte {
	em := make([]byte, size)
	tLen := len(prefix) + len(digest)
	em[1] = 0x01
	for i := 2; i < size-tLen-1; i++ {
		em[i] = 0xff
	}
	copy(em[size-tLen:], prefix)
	copy(em[size-len(digest):], digest)
	return em
}

var cryptoSHA256 = crypto.SHA256

func enginetestKey(name string) *rsa.PrivateKey { return enginetest.Key(name) }
