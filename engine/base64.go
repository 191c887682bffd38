package engine

import "encoding/base64"

// b64 is unpadded base64url that refuses non-canonical encodings (unused
// trailing bits set). Go's decoder skips CR and LF even in strict mode, so
// every input is first checked against the alphabet with isB64URL.
var b64 = base64.RawURLEncoding.Strict()

// b64Val maps a base64url character to its 6-bit value, or 0xFF.
var b64Val = func() (t [256]byte) {
	for i := range t {
		t[i] = 0xFF
	}
	const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
	for i := 0; i < len(alphabet); i++ {
		t[alphabet[i]] = byte(i)
	}
	return t
}()

// isB64URL reports whether s is a canonical unpadded base64url string: only
// the 64 alphabet characters, a length that is not 1 mod 4, and zero unused
// bits in the last character.
func isB64URL(s []byte) bool {
	if len(s)%4 == 1 {
		return false
	}
	for _, c := range s {
		if b64Val[c] == 0xFF {
			return false
		}
	}
	if len(s) == 0 {
		return true
	}
	last := b64Val[s[len(s)-1]]
	switch len(s) % 4 {
	case 2:
		return last&0x0F == 0
	case 3:
		return last&0x03 == 0
	}
	return true
}
