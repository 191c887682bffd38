package engine

import (
	"crypto"
	"crypto/rsa"
)

// sigKey checks an RSASSA-PKCS1-v1_5 signature over a SHA-256 digest. The
// signature has already been checked to be exactly the modulus size.
// Implementations are immutable and safe for concurrent use.
type sigKey interface {
	verify(digest *[32]byte, sig []byte) bool
}

// newSigKey prepares pub for verification, doing all per-key work once.
func newSigKey(pub *rsa.PublicKey) (sigKey, error) {
	return stdRSA{pub}, nil
}

// stdRSA verifies with crypto/rsa.
type stdRSA struct{ pub *rsa.PublicKey }

func (k stdRSA) verify(digest *[32]byte, sig []byte) bool {
	return rsa.VerifyPKCS1v15(k.pub, crypto.SHA256, digest[:], sig) == nil
}
