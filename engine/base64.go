package engine

import "encoding/base64"

// b64 is unpadded base64url that refuses non-canonical encodings; it is
// used off the hot path (JWK members, tests).
var b64 = base64.RawURLEncoding.Strict()

// b64Val maps a base64url character to its 6-bit value, or 0xFF. Any
// invalid character therefore sets bit 7 or 6 of an OR of values.
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
// the 64 alphabet characters (no padding, white space, CR or LF — Go's own
// decoder skips CR and LF even in strict mode), a length that is not 1 mod
// 4, and zero unused bits in the last character. Branch-free over the body.
func isB64URL(s []byte) bool {
	if len(s)%4 == 1 {
		return false
	}
	var acc byte
	i := 0
	for ; i+4 <= len(s); i += 4 {
		acc |= b64Val[s[i]] | b64Val[s[i+1]] | b64Val[s[i+2]] | b64Val[s[i+3]]
	}
	for ; i < len(s); i++ {
		acc |= b64Val[s[i]]
	}
	if acc&0xC0 != 0 {
		return false
	}
	return canonicalTail(s)
}

func canonicalTail(s []byte) bool {
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

// b64Decode decodes canonical unpadded base64url src into dst (which must
// hold len(src)*3/4 bytes) and validates it in the same pass; ok is false
// for anything isB64URL refuses.
func b64Decode(dst, src []byte) (n int, ok bool) {
	if len(src)%4 == 1 {
		return 0, false
	}
	var acc byte
	i := 0
	for ; i+4 <= len(src); i += 4 {
		a, b, c, d := b64Val[src[i]], b64Val[src[i+1]], b64Val[src[i+2]], b64Val[src[i+3]]
		acc |= a | b | c | d
		v := uint32(a)<<18 | uint32(b)<<12 | uint32(c)<<6 | uint32(d)
		dst[n], dst[n+1], dst[n+2] = byte(v>>16), byte(v>>8), byte(v)
		n += 3
	}
	switch len(src) - i {
	case 2:
		a, b := b64Val[src[i]], b64Val[src[i+1]]
		acc |= a | b
		dst[n] = a<<2 | b>>4
		n++
	case 3:
		a, b, c := b64Val[src[i]], b64Val[src[i+1]], b64Val[src[i+2]]
		acc |= a | b | c
		v := uint32(a)<<12 | uint32(b)<<6 | uint32(c)
		dst[n], dst[n+1] = byte(v>>10), byte(v>>2)
		n += 2
	}
	if acc&0xC0 != 0 || !canonicalTail(src) {
		return 0, false
	}
	return n, true
}
