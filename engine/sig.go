package engine

import (
	"crypto"
	"crypto/rsa"

	"github.com/jwtgate/jwtgate/engine/internal/rsaverify"
)

// sigKey checks an RSASSA-PKCS1-v1_5 signature over a SHA-256 digest. The
// signature has already been checked to be exactly the modulus size.
// Implementations are immutable and safe for concurrent use.
type sigKey interface {
	verify(digest *[32]byte, sig []byte) bool
}

// newSigKey prepares pub for verification, doing all per-key work once. Keys
// the precomputed verifier supports use it (results identical to crypto/rsa,
// see package rsaverify's differential tests); any other key falls back to
// crypto/rsa.
func newSigKey(pub *rsa.PublicKey) (sigKey, error) {
	if k, err := rsaverify.New(pub); err == nil {
		return fastRSA{k}, nil
	}
	return stdRSA{pub}, nil
}

// fastRSA verifies with the precomputed public key.
type fastRSA struct{ k *rsaverify.PublicKey }

func (k fastRSA) verify(digest *[32]byte, sig []byte) bool {
	return k.k.VerifyPKCS1v15SHA256(digest, sig)
}

// stdRSA verifies with crypto/rsa.
type stdRSA struct{ pub *rsa.PublicKey }

func (k stdRSA) verify(digest *[32]byte, sig []byte) bool {
	return rsa.VerifyPKCS1v15(k.pub, crypto.SHA256, digest[:], sig) == nil
}
