// Package enginetest makes RSA keys and signed tokens for tests, the load
// generator and `jwtgate mint`: the customer's side of jwtgate. It can mint
// deliberately bad tokens (wrong algorithm, unsigned, bad claims), so it is
// never used by the verifying side.
package enginetest

import (
	"crypto"
	"crypto/hmac"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"sync"
)

// B64 encodes unpadded base64url.
func B64(b []byte) string { return base64.RawURLEncoding.EncodeToString(b) }

// Header returns the standard header {"alg":"RS256","kid":kid,"typ":"JWT"}.
func Header(kid string) map[string]any {
	return map[string]any{"alg": "RS256", "kid": kid, "typ": "JWT"}
}

// Claims returns a valid payload for project issued at iat, living ttl
// seconds.
func Claims(project string, iat, ttl int64) map[string]any {
	return map[string]any{"aud": []string{project}, "iat": iat, "exp": iat + ttl, "sub": "user-1"}
}

// Token signs, with priv under kid, the Claims of project, iat and ttl
// changed by extra: each member set, or removed where its value is nil.
func Token(priv *rsa.PrivateKey, kid, project string, iat, ttl int64, extra map[string]any) string {
	c := Claims(project, iat, ttl)
	for k, v := range extra {
		if v == nil {
			delete(c, k)
			continue
		}
		c[k] = v
	}
	return SignRS256(priv, Header(kid), c)
}

// MustJSON marshals v (a map, struct, or json.RawMessage).
func MustJSON(v any) []byte {
	if b, ok := v.([]byte); ok {
		return b
	}
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return b
}

// SigningInput returns base64url(header) + "." + base64url(payload) of two
// JSON values (maps are marshalled; []byte is taken as raw JSON).
func SigningInput(header, payload any) string {
	return B64(MustJSON(header)) + "." + B64(MustJSON(payload))
}

// SignRS256 signs header and payload with priv (RSASSA-PKCS1-v1_5, SHA-256).
func SignRS256(priv *rsa.PrivateKey, header, payload any) string {
	in := SigningInput(header, payload)
	return in + "." + B64(SignBytes(priv, []byte(in)))
}

// SignBytes signs in with RS256.
func SignBytes(priv *rsa.PrivateKey, in []byte) []byte {
	d := sha256.Sum256(in)
	sig, err := rsa.SignPKCS1v15(rand.Reader, priv, crypto.SHA256, d[:])
	if err != nil {
		panic(err)
	}
	return sig
}

// SignHS256 signs with HMAC-SHA256 under secret (e.g. the public key's
// bytes: the classic algorithm-confusion attack).
func SignHS256(secret []byte, header, payload any) string {
	in := SigningInput(header, payload)
	m := hmac.New(sha256.New, secret)
	m.Write([]byte(in))
	return in + "." + B64(m.Sum(nil))
}

// Unsigned returns header.payload. with an empty signature ("alg":"none").
func Unsigned(header, payload any) string { return SigningInput(header, payload) + "." }

// PublicPEM returns the SPKI PEM of pub.
func PublicPEM(pub *rsa.PublicKey) []byte {
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		panic(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})
}

// PrivatePEM returns the PKCS#8 PEM of priv.
func PrivatePEM(priv *rsa.PrivateKey) []byte {
	der, err := x509.MarshalPKCS8PrivateKey(priv)
	if err != nil {
		panic(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})
}

// ParsePrivatePEM reads an RSA private key (PKCS#8 or PKCS#1 PEM).
func ParsePrivatePEM(data []byte) (*rsa.PrivateKey, error) {
	block, _ := pem.Decode(data)
	if block == nil {
		return nil, errors.New("no PEM block")
	}
	switch block.Type {
	case "PRIVATE KEY":
		k, err := x509.ParsePKCS8PrivateKey(block.Bytes)
		if err != nil {
			return nil, err
		}
		rk, ok := k.(*rsa.PrivateKey)
		if !ok {
			return nil, errors.New("not an RSA private key")
		}
		return rk, nil
	case "RSA PRIVATE KEY":
		return x509.ParsePKCS1PrivateKey(block.Bytes)
	}
	return nil, fmt.Errorf("unsupported PEM block %q", block.Type)
}

// LoadPrivateKey reads a PEM private key file.
func LoadPrivateKey(path string) (*rsa.PrivateKey, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	return ParsePrivatePEM(b)
}

// Testdata returns the path of a file under the repository's testdata/.
func Testdata(elem ...string) string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(append([]string{filepath.Dir(file), "..", "..", "testdata"}, elem...)...)
}

var (
	keysMu sync.Mutex
	keys   = map[string]*rsa.PrivateKey{}
)

// Key returns the fixed test key testdata/keys/<name>.pem (e.g. "rsa2048-a",
// "rsa3072", "rsa4096"), parsed once per process. It panics if missing.
func Key(name string) *rsa.PrivateKey {
	keysMu.Lock()
	defer keysMu.Unlock()
	if k, ok := keys[name]; ok {
		return k
	}
	k, err := LoadPrivateKey(Testdata("keys", name+".pem"))
	if err != nil {
		panic("enginetest: " + err.Error())
	}
	keys[name] = k
	return k
}
