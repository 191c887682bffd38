package engine

import (
	"crypto"
	"crypto/rsa"

	"github.com/jwtgate/jwtgate/engine/internal/rsaverify"
)

// sigKey checks an RSASSA-PKCS1-v1_5 signature over a SHA-256 digest. The
// signature has already been checked to be exactly the modulus size. It is
// a concrete type, not an interface, so that the digest (on the caller's
// stack) does not escape to the heap. Immutable and safe for concurrent use.
type sigKey struct {
	fast *rsaverify.PublicKey // precomputed Montgomery form, when supported
	std  *rsa.PublicKey       // crypto/rsa fallback otherwise
}

// newSigKey prepares pub for verification, doing all per-key work once. Keys
// the precomputed verifier supports use it (results identical to crypto/rsa,
// see package rsaverify's differential tests); any other key falls back to
// crypto/rsa.
func newSigKey(pub *rsa.PublicKey) (sigKey, error) {
	if k, err := rsaverify.New(pub); err == nil {
		return sigKey{fast: k}, nil
	}
	return sigKey{std: pub}, nil
}

func (k *sigKey) verify(digest *[32]byte, sig []byte) bool {
	if k.fast != nil {
		return k.fast.VerifyPKCS1v15SHA256(digest, sig)
	}
	d := *digest // a copy, so that digest itself never escapes
	return rsa.VerifyPKCS1v15(k.std, crypto.SHA256, d[:], sig) == nil
}
