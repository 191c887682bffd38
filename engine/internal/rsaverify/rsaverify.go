// Package rsaverify implements a verify-only RSASSA-PKCS1-v1_5 SHA-256
// signature check that does all per-key work (Montgomery constants, the
// expected encoded message template) once, at construction.
//
// The result of every check is identical to crypto/rsa.VerifyPKCS1v15 with
// crypto.SHA256 for the keys New accepts; the package's tests compare the two
// differentially. A PublicKey is immutable after New and safe for concurrent
// use. Verification allocates nothing.
//
// The public operation works on public data only (the key, the signature and
// the digest), so only the final comparison of the encoded message is made in
// constant time, as crypto/rsa does.
package rsaverify

import (
	"crypto/rsa"
	"encoding/binary"
	"errors"
	"math/big"
	"math/bits"
	"sync"
)

// Key size limits accepted by New, in bits.
const (
	MinBits = 1024
	MaxBits = 16384
)

// stackLimbs is the largest modulus, in 64-bit limbs, whose scratch space
// lives on the stack (4096 bits). Larger keys use a per-key sync.Pool.
const stackLimbs = 64

// scratchWords is the scratch needed for a modulus of n limbs: the
// signature, the Montgomery form of it, the accumulator and a 2n-word
// double-width product.
func scratchWords(n int) int { return 5 * n }

// sha256Prefix is the DER encoding of the SHA-256 DigestInfo header
// (RFC 8017, section 9.2, note 1).
var sha256Prefix = [...]byte{
	0x30, 0x31, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01,
	0x65, 0x03, 0x04, 0x02, 0x01, 0x05, 0x00, 0x04, 0x20,
}

// PublicKey is an RSA public key prepared for fast PKCS #1 v1.5 SHA-256
// verification. It is immutable and safe for concurrent use.
type PublicKey struct {
	n     []uint64 // modulus, little-endian 64-bit limbs
	rr    []uint64 // R² mod N, R = 2^(64·len(n))
	em    []uint64 // expected encoded message with an all-zero digest
	n0inv uint64   // -N⁻¹ mod 2⁶⁴
	e     uint64   // public exponent (odd, ≥ 3)
	size  int      // modulus size in bytes
	pool  *sync.Pool
}

// emTemplates holds the expected encoded message of each modulus size in
// bytes (at most (MaxBits-MinBits)/8+1 of them), shared and never written.
var emTemplates sync.Map // int -> []uint64

// ErrUnsupportedKey is returned by New for keys it does not handle; callers
// should fall back to crypto/rsa for them.
var ErrUnsupportedKey = errors.New("rsaverify: unsupported RSA public key")

// New prepares pub for verification. It accepts keys with an odd modulus of
// MinBits to MaxBits bits and an odd public exponent 3 ≤ E < 2³¹ (the range
// crypto/rsa accepts); anything else yields ErrUnsupportedKey.
func New(pub *rsa.PublicKey) (*PublicKey, error) {
	if pub == nil || pub.N == nil || pub.N.Sign() <= 0 || pub.N.Bit(0) == 0 {
		return nil, ErrUnsupportedKey
	}
	bitLen := pub.N.BitLen()
	if bitLen < MinBits || bitLen > MaxBits {
		return nil, ErrUnsupportedKey
	}
	if pub.E < 3 || pub.E&1 == 0 || pub.E > 1<<31-1 {
		return nil, ErrUnsupportedKey
	}
	size := (bitLen + 7) / 8
	nl := (bitLen + 63) / 64
	limbs := make([]uint64, 2*nl) // N and R² side by side: one allocation, adjacent in memory
	k := &PublicKey{
		n:    limbs[:nl:nl],
		rr:   limbs[nl:],
		e:    uint64(pub.E),
		size: size,
	}
	fromBytes(k.n, pub.N.FillBytes(make([]byte, nl*8)))

	// -N⁻¹ mod 2⁶⁴ by Newton iteration: each step doubles the correct bits.
	n0 := k.n[0]
	inv := n0 // correct to 3 bits for odd n0
	for i := 0; i < 5; i++ {
		inv *= 2 - n0*inv
	}
	k.n0inv = -inv

	r2 := new(big.Int).Lsh(big.NewInt(1), uint(2*64*nl))
	r2.Mod(r2, pub.N)
	fromBytes(k.rr, r2.FillBytes(make([]byte, nl*8)))

	// EM = 0x00 0x01 FF..FF 0x00 || DigestInfo || digest (RFC 8017 9.2),
	// with the digest left zero; it is ORed in per verification. It depends
	// only on the modulus size, so keys of one size share it (a registry of
	// many keys keeps one copy, not one per key).
	tLen := len(sha256Prefix) + 32
	if size < tLen+11 {
		return nil, ErrUnsupportedKey
	}
	if t, ok := emTemplates.Load(size); ok {
		k.em = t.([]uint64)
	} else {
		em := make([]byte, nl*8)
		body := em[nl*8-size:]
		body[1] = 0x01
		for i := 2; i < size-tLen-1; i++ {
			body[i] = 0xff
		}
		copy(body[size-tLen:], sha256Prefix[:])
		k.em = make([]uint64, nl)
		fromBytes(k.em, em)
		t, _ := emTemplates.LoadOrStore(size, k.em)
		k.em = t.([]uint64)
	}

	if nl > stackLimbs {
		words := scratchWords(nl)
		k.pool = &sync.Pool{New: func() any {
			s := make([]uint64, words)
			return &s
		}}
	}
	return k, nil
}

// Size returns the modulus size in bytes, the only valid signature length.
func (k *PublicKey) Size() int { return k.size }

// VerifyPKCS1v15SHA256 reports whether sig is a valid RSASSA-PKCS1-v1_5
// signature with SHA-256 of digest under k. It requires len(sig) == Size()
// and sig < N, computes sig^E mod N and compares the whole encoded message
// with the expected one in constant time.
func (k *PublicKey) VerifyPKCS1v15SHA256(digest *[32]byte, sig []byte) bool {
	if len(sig) != k.size {
		return false
	}
	nl := len(k.n)
	if nl <= stackLimbs {
		var buf [5 * stackLimbs]uint64
		return k.verify(digest, sig, buf[:scratchWords(nl)])
	}
	p := k.pool.Get().(*[]uint64)
	ok := k.verify(digest, sig, *p)
	k.pool.Put(p)
	return ok
}

func (k *PublicKey) verify(digest *[32]byte, sig []byte, scratch []uint64) bool {
	nl := len(k.n)
	s := scratch[:nl]
	a := scratch[nl : 2*nl]
	acc := scratch[2*nl : 3*nl]
	t := scratch[3*nl : 5*nl]

	// s = signature as an integer; the top limb may be partial.
	var full [8]byte
	rest := sig
	for i := 0; i < nl; i++ {
		if len(rest) >= 8 {
			s[i] = binary.BigEndian.Uint64(rest[len(rest)-8:])
			rest = rest[:len(rest)-8]
		} else {
			full = [8]byte{}
			copy(full[8-len(rest):], rest)
			s[i] = binary.BigEndian.Uint64(full[:])
			rest = nil
		}
	}
	// Require s < N (crypto/rsa rejects s ≥ N). Public data: no need for
	// constant time, but the borrow chain is branch-free anyway.
	var borrow uint64
	for i := 0; i < nl; i++ {
		_, borrow = bits.Sub64(s[i], k.n[i], borrow)
	}
	if borrow == 0 {
		return false
	}

	// acc = s^E mod N with left-to-right binary exponentiation in the
	// Montgomery domain. a = s·R mod N. The final multiply is by s in the
	// normal domain, which leaves the result in the normal domain.
	k.montMul(a, s, k.rr, t)
	copy(acc, a)
	e := k.e
	top := 63 - bits.LeadingZeros64(e)
	for i := top - 1; i >= 1; i-- {
		k.montSqr(acc, acc, t)
		if e>>uint(i)&1 == 1 {
			k.montMul(acc, acc, a, t)
		}
	}
	k.montSqr(acc, acc, t)
	k.montMul(acc, acc, s, t) // e is odd: bit 0 is set

	// Constant-time comparison of the whole EM.
	var d uint64
	for i := 4; i < nl; i++ {
		d |= acc[i] ^ k.em[i]
	}
	for i := 0; i < 4; i++ {
		want := k.em[i] | binary.BigEndian.Uint64(digest[24-8*i:32-8*i])
		d |= acc[i] ^ want
	}
	return d == 0
}

// fromBytes fills z (little-endian limbs) from the big-endian b, len(b) == 8·len(z).
func fromBytes(z []uint64, b []byte) {
	for i := range z {
		z[i] = binary.BigEndian.Uint64(b[len(b)-8*(i+1):])
	}
}

// montMul sets z = x·y·R⁻¹ mod N, fully reduced. x, y < N; z may alias x or
// y. t is scratch of 2·len(n) words.
func (k *PublicKey) montMul(z, x, y, t []uint64) {
	nl := len(k.n)
	t = t[:2*nl]
	clear(t[:nl])
	x = x[:nl]
	if fullASM(nl) {
		mulRowsADX(t, x, y[:nl])
	} else {
		for i := 0; i < nl; i++ {
			t[i+nl] = addMulVVW(t[i:i+nl], x, y[i])
		}
	}
	k.reduce(z, t)
}

// montSqr sets z = x²·R⁻¹ mod N, fully reduced. x < N; z may alias x.
// Each cross product xᵢ·xⱼ (i < j) is computed once and doubled.
func (k *PublicKey) montSqr(z, x, t []uint64) {
	nl := len(k.n)
	t = t[:2*nl]
	x = x[:nl]
	clear(t)
	if fullASM(nl) {
		sqrCrossADX(t, x)
		sqrDiagADX(t, x)
		k.reduce(z, t)
		return
	}
	for i := 0; i < nl-1; i++ {
		t[i+nl] = addMulVVW(t[2*i+1:i+nl], x[i+1:], x[i])
	}
	// Double the cross products and add the squares xᵢ² at position 2i.
	var shiftCarry, c uint64
	for i := 0; i < nl; i++ {
		lo, hi := t[2*i], t[2*i+1]
		dlo := lo<<1 | shiftCarry
		dhi := hi<<1 | lo>>63
		shiftCarry = hi >> 63
		sh, sl := bits.Mul64(x[i], x[i])
		dlo, c = bits.Add64(dlo, sl, c)
		dhi, c = bits.Add64(dhi, sh, c)
		t[2*i], t[2*i+1] = dlo, dhi
	}
	k.reduce(z, t)
}

// reduce sets z = t·R⁻¹ mod N for t < N·R (Montgomery reduction, separated
// operand scanning), with a final conditional subtraction so that z < N.
// t (2·len(n) words) is clobbered.
func (k *PublicKey) reduce(z, t []uint64) {
	nl := len(k.n)
	n := k.n
	var c uint64
	if fullASM(nl) {
		c = reduceADX(t[:2*nl], n, k.n0inv)
	} else {
		for i := 0; i < nl; i++ {
			m := t[i] * k.n0inv
			cc := addMulVVW(t[i:i+nl], n, m)
			var c1, c2 uint64
			t[i+nl], c1 = bits.Add64(t[i+nl], cc, 0)
			t[i+nl], c2 = bits.Add64(t[i+nl], c, 0)
			c = c1 + c2
		}
	}
	// u = c·R + t[nl:] < 2N. z = u - N if u ≥ N else u.
	u := t[nl : 2*nl]
	z = z[:nl]
	var b uint64
	for i := 0; i < nl; i++ {
		z[i], b = bits.Sub64(u[i], n[i], b)
	}
	// u ≥ N iff c == 1 or there was no borrow; otherwise restore u.
	keep := (1 - c) & b // 1: take u
	mask := -keep
	for i := 0; i < nl; i++ {
		z[i] = z[i]&^mask | u[i]&mask
	}
}
