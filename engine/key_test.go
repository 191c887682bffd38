package engine_test

import (
	"crypto"
	"crypto/rsa"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"math/big"
	"os"
	"strings"
	"testing"

	"github.com/jwtgate/jwtgate/engine"
	et "github.com/jwtgate/jwtgate/engine/enginetest"
)

func readTestdata(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(et.Testdata("keys", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestParsePublicKeyPEM(t *testing.T) {
	priv := et.Key("rsa2048-a")
	spki := et.PublicPEM(&priv.PublicKey)
	pkcs1 := pem.EncodeToMemory(&pem.Block{Type: "RSA PUBLIC KEY", Bytes: x509.MarshalPKCS1PublicKey(&priv.PublicKey)})
	ecDER, _ := pem.Decode(readTestdata(t, "ec256.pem"))
	ecKey, err := x509.ParsePKCS8PrivateKey(ecDER.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	ecPub, _ := x509.MarshalPKIXPublicKey(ecKey.(crypto.Signer).Public())
	small := et.Key("rsa1024")
	even := &rsa.PublicKey{N: new(big2048).even(&priv.PublicKey), E: 65537}
	evenDER, _ := x509.MarshalPKIXPublicKey(even)
	e3 := &rsa.PublicKey{N: priv.N, E: 3}
	e3DER, _ := x509.MarshalPKIXPublicKey(e3)
	tests := []struct {
		name    string
		in      []byte
		wantErr error
		msg     string
	}{
		{name: "spki", in: spki},
		{name: "pkcs1", in: pkcs1},
		{name: "surrounding whitespace", in: append(append([]byte("\n  "), spki...), "\n\n"...)},
		{name: "3072", in: et.PublicPEM(&et.Key("rsa3072").PublicKey)},
		{name: "4096", in: et.PublicPEM(&et.Key("rsa4096").PublicKey)},
		{name: "private pkcs8", in: et.PrivatePEM(priv), wantErr: engine.ErrPrivateKey, msg: "send only the public key"},
		{name: "private pkcs1", in: pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(priv)}), wantErr: engine.ErrPrivateKey},
		{name: "public then private", in: append(append([]byte{}, spki...), et.PrivatePEM(priv)...), wantErr: engine.ErrPrivateKey},
		{name: "two blocks", in: append(append([]byte{}, spki...), spki...), wantErr: engine.ErrInvalidKey, msg: "exactly one PEM block"},
		{name: "junk before", in: append([]byte("hello\n"), spki...), wantErr: engine.ErrInvalidKey},
		{name: "junk after", in: append(append([]byte{}, spki...), "trailing"...), wantErr: engine.ErrInvalidKey},
		{name: "not pem", in: []byte("not a key"), wantErr: engine.ErrInvalidKey},
		{name: "empty", in: nil, wantErr: engine.ErrInvalidKey},
		{name: "ec", in: pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: ecPub}), wantErr: engine.ErrInvalidKey, msg: "not an RSA key"},
		{name: "1024 bits", in: et.PublicPEM(&small.PublicKey), wantErr: engine.ErrInvalidKey, msg: "at least 2048"},
		{name: "even modulus", in: pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: evenDER}), wantErr: engine.ErrInvalidKey, msg: "even"},
		{name: "exponent 3", in: pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: e3DER}), wantErr: engine.ErrInvalidKey, msg: "65537"},
		{name: "certificate", in: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: []byte{1, 2, 3}}), wantErr: engine.ErrInvalidKey, msg: "certificate"},
		{name: "bad der", in: pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: []byte{1, 2, 3}}), wantErr: engine.ErrInvalidKey},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			pub, err := engine.ParsePublicKeyPEM(tc.in, engine.KeyPolicy{})
			if tc.wantErr == nil {
				if err != nil || pub == nil {
					t.Fatalf("err = %v", err)
				}
				return
			}
			if !errors.Is(err, tc.wantErr) {
				t.Fatalf("err = %v, want %v", err, tc.wantErr)
			}
			if !strings.Contains(err.Error(), tc.msg) {
				t.Fatalf("message %q does not say %q", err, tc.msg)
			}
			if strings.Contains(err.Error(), "MII") || len(err.Error()) > 200 {
				t.Fatalf("message quotes key material: %q", err)
			}
		})
	}
	if _, err := engine.ParsePublicKeyPEM(et.PublicPEM(&et.Key("rsa4096").PublicKey), engine.KeyPolicy{MaxBits: 3072}); !errors.Is(err, engine.ErrInvalidKey) {
		t.Fatalf("max bits policy not applied: %v", err)
	}
}

type big2048 struct{}

func (big2048) even(pub *rsa.PublicKey) *bigInt {
	n := new(bigInt).Set(pub.N)
	return n.SetBit(n, 0, 0)
}

func TestParseJWK(t *testing.T) {
	priv := et.Key("rsa2048-a")
	j := engine.JWKOf(&priv.PublicKey, "")
	obj := func(kv ...any) []byte {
		m := map[string]any{"kty": "RSA", "n": j.N, "e": j.E}
		for i := 0; i < len(kv); i += 2 {
			if kv[i+1] == nil {
				delete(m, kv[i].(string))
			} else {
				m[kv[i].(string)] = kv[i+1]
			}
		}
		b, _ := json.Marshal(m)
		return b
	}
	tests := []struct {
		name    string
		in      []byte
		wantErr error
	}{
		{name: "minimal", in: obj()},
		{name: "full", in: obj("use", "sig", "alg", "RS256", "key_ops", []string{"verify"}, "kid", "abc")},
		{name: "private d", in: obj("d", "AQAB"), wantErr: engine.ErrPrivateKey},
		{name: "private p", in: obj("p", "AQAB"), wantErr: engine.ErrPrivateKey},
		{name: "kty EC", in: obj("kty", "EC"), wantErr: engine.ErrInvalidKey},
		{name: "missing n", in: obj("n", nil), wantErr: engine.ErrInvalidKey},
		{name: "leading zero n", in: obj("n", et.B64(append([]byte{0}, priv.N.Bytes()...))), wantErr: engine.ErrInvalidKey},
		{name: "padded e", in: obj("e", "AQAB="), wantErr: engine.ErrInvalidKey},
		{name: "use enc", in: obj("use", "enc"), wantErr: engine.ErrInvalidKey},
		{name: "alg RS512", in: obj("alg", "RS512"), wantErr: engine.ErrInvalidKey},
		{name: "key_ops sign", in: obj("key_ops", []string{"verify", "sign"}), wantErr: engine.ErrInvalidKey},
		{name: "e 3", in: obj("e", "Aw"), wantErr: engine.ErrInvalidKey},
		{name: "duplicate member", in: []byte(`{"kty":"RSA","kty":"RSA","n":"` + j.N + `","e":"AQAB"}`), wantErr: engine.ErrInvalidKey},
		{name: "not json", in: []byte(`{`), wantErr: engine.ErrInvalidKey},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			pub, _, err := engine.ParseJWK(tc.in, engine.KeyPolicy{})
			if tc.wantErr == nil {
				if err != nil || pub.N.Cmp(priv.N) != 0 {
					t.Fatalf("err = %v", err)
				}
				return
			}
			if !errors.Is(err, tc.wantErr) {
				t.Fatalf("err = %v, want %v", err, tc.wantErr)
			}
		})
	}
}

// TestThumbprintRFC7638 checks the RFC 7638 section 3.1 example.
func TestThumbprintRFC7638(t *testing.T) {
	jwk := `{"kty":"RSA","n":"0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw","e":"AQAB","alg":"RS256","kid":"2011-04-29"}`
	pub, kid, err := engine.ParseJWK([]byte(jwk), engine.KeyPolicy{})
	if err != nil {
		t.Fatal(err)
	}
	if kid != "2011-04-29" {
		t.Fatalf("kid = %q", kid)
	}
	if got, want := engine.Thumbprint(pub), "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs"; got != want {
		t.Fatalf("thumbprint = %s, want %s", got, want)
	}
}

func TestValidProjectAndKID(t *testing.T) {
	for s, want := range map[string]bool{"myapp": true, "a": true, "0a_b-c": true, "-a": false, "_a": false, "A": false, "": false, strings.Repeat("a", 63): true, strings.Repeat("a", 64): false, "a.b": false} {
		if engine.ValidProject(s) != want {
			t.Errorf("ValidProject(%q) != %v", s, want)
		}
	}
	for s, want := range map[string]bool{"k1": true, "A.b_c-9": true, "": false, "a b": false, strings.Repeat("k", 128): true, strings.Repeat("k", 129): false, "é": false, ".": false, "..": false, "...": true, ".k": true, "k..": true} {
		if engine.ValidKID(s) != want {
			t.Errorf("ValidKID(%q) != %v", s, want)
		}
	}
	// A kid registered before "." and ".." were refused still names a key.
	for s, want := range map[string]bool{".": true, "..": true, "k1": true, "": false, "a/b": false, "%2e": false} {
		if engine.StoredKID(s) != want {
			t.Errorf("StoredKID(%q) != %v", s, want)
		}
	}
	if k := engine.NewKID(); !engine.ValidKID(k) || k == engine.NewKID() {
		t.Fatalf("NewKID %q", k)
	}
}

type bigInt = big.Int
