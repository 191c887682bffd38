package engine

import (
	"crypto/sha256"
	"errors"
	"strings"
	"testing"
)

// RFC 7515 Appendix A.2: the RS256 example, its key imported from the JWK.
const (
	rfcA2Token = "eyJhbGciOiJSUzI1NiJ9" +
		".eyJpc3MiOiJqb2UiLA0KICJleHAiOjEzMDA4MTkzODAsDQogImh0dHA6Ly9leGFtcGxlLmNvbS9pc19yb290Ijp0cnVlfQ" +
		".cC4hiUPoj9Eetdgtv3hF80EGrhuB__dzERat0XF9g2VtQgr9PJbu3XOiZj5RZmh7AAuHIm4Bh-0Qc_lF5YKt_O8W2Fp5jujGbds9uJdbF9CUAr7t1dnZcAcQjbKBYNX4BAynRFdiuB--f_nZLgrnbyTyWzO75vRK5h6xBArLIARNPvkSjtQBMHlb1L07Qe7K0GarZRmB_eSN9383LcOLn6_dO--xi12jzDwusC-eOkHWEsqtFZESc6BfI7noOPqvhJ1phCnvWh6IeYI2w9QOYEUipUTI8np6LbgGY9Fs98rqVt5AXLIhWkWywlVmtVrBp0igcN_IoypGlUPQGe77Rw"
	rfcA2JWK = `{"kty":"RSA","n":"ofgWCuLjybRlzo0tZWJjNiuSfb4p4fAkd_wWJcyQoTbji9k0l8W26mPddxHmfHQp-Vaw-4qPCJrcS2mJPMEzP1Pt0Bm4d4QlL-yRT-SFd2lZS-pCgNMsD1W_YpRPEwOWvG6b32690r2jZ47soMZo9wGzjb_7OMg0LOL-bSf63kpaSHSXndS5z5rexMdbBYUsLA9e-KXBdQOS-UTo7WTBEMa2R2CapHg665xsmtdVMTBQY4uDZlxvb3qCo5ZwKh9kG4LT6_I5IhlJH7aGhyxXFvUK-DWNmoudF8NAco9_h9iaGNj8q2ethFkMLs91kzk2PAcDTW9gb54h4FRWyuXpoQ","e":"AQAB"}`
)

func TestRFC7515AppendixA2(t *testing.T) {
	pub, _, err := ParseJWK([]byte(rfcA2JWK), KeyPolicy{})
	if err != nil {
		t.Fatalf("ParseJWK: %v", err)
	}
	sk, err := newSigKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	dot := strings.LastIndexByte(rfcA2Token, '.')
	sig, err := b64.DecodeString(rfcA2Token[dot+1:])
	if err != nil {
		t.Fatal(err)
	}
	digest := sha256.Sum256([]byte(rfcA2Token[:dot]))
	if !sk.verify(&digest, sig) {
		t.Fatal("the engine's signature check refuses RFC 7515 A.2's signature")
	}
	for bit := 0; bit < len(sig)*8; bit += 97 {
		bad := append([]byte(nil), sig...)
		bad[bit/8] ^= 1 << (bit % 8)
		if sk.verify(&digest, bad) {
			t.Fatalf("signature with bit %d flipped accepted", bit)
		}
	}
	bad := digest
	bad[0] ^= 1
	if sk.verify(&bad, sig) {
		t.Fatal("signature accepted over a different digest")
	}

	store := NewMemoryStore()
	v, err := New(store)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := v.Verify([]byte(rfcA2Token)); !errors.Is(err, ErrMissingKID) {
		t.Fatalf("Verify(RFC 7515 A.2) = %v, want missing_kid", err)
	}
}
