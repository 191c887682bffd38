package engine

import (
	"bytes"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"math/big"
	"strconv"
	"time"
)

// KeyStatus is a key's state: only active keys verify tokens.
type KeyStatus string

// The two key states.
const (
	StatusActive   KeyStatus = "active"
	StatusInactive KeyStatus = "inactive"
)

// Valid reports whether s is one of the two states.
func (s KeyStatus) Valid() bool { return s == StatusActive || s == StatusInactive }

// Defaults of the key policy.
const (
	DefaultMinKeyBits = 2048
	DefaultMaxKeyBits = 4096
	// MaxKIDLength is the longest kid accepted (docs/API.md kid pattern).
	MaxKIDLength = 128
	// MaxProjectLength is the longest project ID accepted.
	MaxProjectLength = 63
)

// Key is a registered RSA public key and its metadata. A *Key returned by a
// store or the Verifier is a copy the caller may keep and change.
type Key struct {
	KID     string
	Project string
	Label   string
	Status  KeyStatus
	Public  *rsa.PublicKey

	CreatedAt     time.Time
	UpdatedAt     time.Time
	LastUsedAt    time.Time // zero until the key first verifies a token
	VerifiedCount uint64
}

// Bits is the modulus size in bits.
func (k *Key) Bits() int {
	if k == nil || k.Public == nil {
		return 0
	}
	return k.Public.N.BitLen()
}

// Thumbprint is the key's RFC 7638 JWK thumbprint (SHA-256, base64url).
func (k *Key) Thumbprint() string { return Thumbprint(k.Public) }

// Clone returns a copy of k (the public key itself is shared: it is never
// modified).
func (k *Key) Clone() *Key {
	if k == nil {
		return nil
	}
	c := *k
	return &c
}

// KeyUpdate is a partial update of a key's mutable fields; nil fields are
// left as they are.
type KeyUpdate struct {
	Label  *string
	Status *KeyStatus
}

// KeyPolicy is what a registered key must satisfy.
type KeyPolicy struct {
	MinBits int // default DefaultMinKeyBits
	MaxBits int // default DefaultMaxKeyBits
}

func (p KeyPolicy) withDefaults() KeyPolicy {
	if p.MinBits == 0 {
		p.MinBits = DefaultMinKeyBits
	}
	if p.MaxBits == 0 {
		p.MaxBits = DefaultMaxKeyBits
	}
	return p
}

// ErrInvalidKey is wrapped by every key-parsing and key-policy error; the
// server answers it with 400 and the error's message.
var ErrInvalidKey = errors.New("invalid key")

// ErrPrivateKey is returned (wrapped in a KeyError) when private key material
// is offered where a public key belongs. The material is neither stored nor
// logged.
var ErrPrivateKey = errors.New("private key material refused: send only the public key")

// ErrInvalidLabel is wrapped (with ErrInvalidKey) by the KeyError of a
// label that cannot be stored: too long, not UTF-8, control characters.
// The server answers it with 400 invalid_label.
var ErrInvalidLabel = errors.New("invalid label")

// KeyError is a key-parsing or key-policy failure with a message that is safe
// to show to the user (it never quotes the key).
type KeyError struct {
	Msg string
	Err error // ErrInvalidKey, ErrPrivateKey or ErrInvalidLabel
}

func (e *KeyError) Error() string { return e.Msg }

// Unwrap lets errors.Is find ErrInvalidKey / ErrPrivateKey.
func (e *KeyError) Unwrap() []error {
	if e.Err == ErrPrivateKey || e.Err == ErrInvalidLabel {
		return []error{e.Err, ErrInvalidKey}
	}
	return []error{ErrInvalidKey}
}

func keyErr(msg string) error { return &KeyError{Msg: msg, Err: ErrInvalidKey} }

func privateKeyErr() error {
	return &KeyError{Msg: "this is a private key: it was not stored; send only the public key", Err: ErrPrivateKey}
}

// CheckPublicKey applies the key policy: RSA modulus between MinBits and
// MaxBits, odd, public exponent 65537.
func CheckPublicKey(pub *rsa.PublicKey, p KeyPolicy) error {
	p = p.withDefaults()
	if pub == nil || pub.N == nil {
		return keyErr("no RSA public key given")
	}
	bits := pub.N.BitLen()
	if bits < p.MinBits {
		return keyErr("RSA modulus is " + strconv.Itoa(bits) + " bits; at least " + strconv.Itoa(p.MinBits) + " are required")
	}
	if bits > p.MaxBits {
		return keyErr("RSA modulus is " + strconv.Itoa(bits) + " bits; at most " + strconv.Itoa(p.MaxBits) + " are allowed")
	}
	if pub.N.Bit(0) == 0 {
		return keyErr("RSA modulus is even: not a valid RSA key")
	}
	if pub.E != 65537 {
		return keyErr("RSA public exponent must be 65537")
	}
	return nil
}

// ParsePublicKeyPEM parses exactly one PEM block holding an RSA public key,
// either SPKI ("PUBLIC KEY") or PKCS#1 ("RSA PUBLIC KEY"), with nothing but
// white space around it, and applies the policy. Certificates and private
// keys are refused with a message that says what to send instead.
func ParsePublicKeyPEM(data []byte, p KeyPolicy) (*rsa.PublicKey, error) {
	trimmed := bytes.TrimSpace(data)
	if len(trimmed) == 0 {
		return nil, keyErr("public_key is empty")
	}
	if !bytes.HasPrefix(trimmed, []byte("-----BEGIN ")) {
		return nil, keyErr("public_key is not PEM: it must start with a -----BEGIN line")
	}
	block, rest := pem.Decode(trimmed)
	if block == nil {
		return nil, keyErr("public_key is not valid PEM")
	}
	if isPrivatePEMType(block.Type) {
		return nil, privateKeyErr()
	}
	if len(bytes.TrimSpace(rest)) != 0 {
		if b, _ := pem.Decode(rest); b != nil && isPrivatePEMType(b.Type) {
			return nil, privateKeyErr()
		}
		return nil, keyErr("public_key must hold exactly one PEM block and nothing else")
	}
	if len(block.Headers) != 0 {
		return nil, keyErr("PEM headers (encryption) are not supported in public_key")
	}
	var pub *rsa.PublicKey
	switch block.Type {
	case "PUBLIC KEY":
		k, err := x509.ParsePKIXPublicKey(block.Bytes)
		if err != nil {
			return nil, keyErr("PUBLIC KEY block is not a valid SubjectPublicKeyInfo")
		}
		rk, ok := k.(*rsa.PublicKey)
		if !ok {
			return nil, keyErr("not an RSA key: only RSA public keys (RS256) are supported")
		}
		pub = rk
	case "RSA PUBLIC KEY":
		k, err := x509.ParsePKCS1PublicKey(block.Bytes)
		if err != nil {
			return nil, keyErr("RSA PUBLIC KEY block is not a valid PKCS#1 public key")
		}
		pub = k
	case "CERTIFICATE":
		return nil, keyErr("a certificate was sent: send its public key (PEM 'PUBLIC KEY') instead; extract it with: openssl x509 -pubkey -noout -in cert.pem")
	default:
		return nil, keyErr("unsupported PEM block type " + strconv.Quote(block.Type) + ": send a 'PUBLIC KEY' or 'RSA PUBLIC KEY' block")
	}
	if err := CheckPublicKey(pub, p); err != nil {
		return nil, err
	}
	return pub, nil
}

func isPrivatePEMType(t string) bool {
	switch t {
	case "PRIVATE KEY", "RSA PRIVATE KEY", "EC PRIVATE KEY", "ENCRYPTED PRIVATE KEY", "OPENSSH PRIVATE KEY", "DSA PRIVATE KEY":
		return true
	}
	return bytes.HasSuffix([]byte(t), []byte("PRIVATE KEY"))
}

// ParseJWK parses an RSA public JWK (RFC 7517/7518) strictly: kty "RSA",
// n and e in minimal base64url, optional use "sig", alg "RS256", key_ops
// within ["verify"], and no private members (d, p, q, dp, dq, qi, oth), then
// applies the policy. The object must be strict JSON (no duplicate names).
// The kid member, if any, is returned for the caller to use.
func ParseJWK(data []byte, p KeyPolicy) (pub *rsa.PublicKey, kid string, err error) {
	if err := ValidateJSONObject(data); err != nil {
		return nil, "", keyErr("jwk is not a strict JSON object (" + err.Error() + ")")
	}
	var m map[string]json.RawMessage
	if err := json.Unmarshal(data, &m); err != nil {
		return nil, "", keyErr("jwk is not a JSON object")
	}
	for _, priv := range []string{"d", "p", "q", "dp", "dq", "qi", "oth"} {
		if _, ok := m[priv]; ok {
			return nil, "", privateKeyErr()
		}
	}
	str := func(name string) (string, bool, error) {
		raw, ok := m[name]
		if !ok {
			return "", false, nil
		}
		var s string
		if err := json.Unmarshal(raw, &s); err != nil {
			return "", true, keyErr("jwk member " + strconv.Quote(name) + " must be a string")
		}
		return s, true, nil
	}
	kty, ok, err := str("kty")
	if err != nil {
		return nil, "", err
	}
	if !ok {
		if _, isSet := m["keys"]; isSet {
			return nil, "", keyErr(`this is a key set (JWKS, with "keys"): send one key, i.e. one element of "keys" as "jwk"`)
		}
		return nil, "", keyErr("jwk has no kty")
	}
	if kty != "RSA" {
		return nil, "", keyErr("not an RSA key: jwk kty is " + strconv.Quote(kty) + ", only \"RSA\" is supported")
	}
	if use, ok, err := str("use"); err != nil {
		return nil, "", err
	} else if ok && use != "sig" {
		return nil, "", keyErr("jwk use must be \"sig\"")
	}
	if alg, ok, err := str("alg"); err != nil {
		return nil, "", err
	} else if ok && alg != "RS256" {
		return nil, "", keyErr("jwk alg must be \"RS256\"")
	}
	if raw, ok := m["key_ops"]; ok {
		var ops []string
		if err := json.Unmarshal(raw, &ops); err != nil {
			return nil, "", keyErr("jwk key_ops must be an array of strings")
		}
		for _, op := range ops {
			if op != "verify" {
				return nil, "", keyErr("jwk key_ops may contain only \"verify\"")
			}
		}
	}
	if kid, ok, err = str("kid"); err != nil {
		return nil, "", err
	} else if ok && !ValidKID(kid) {
		return nil, "", keyErr(`jwk kid must match ^[A-Za-z0-9._-]{1,128}$ and not be "." or ".."`)
	}
	nStr, ok, err := str("n")
	if err != nil {
		return nil, "", err
	}
	if !ok {
		return nil, "", keyErr("jwk has no n")
	}
	eStr, ok, err := str("e")
	if err != nil {
		return nil, "", err
	}
	if !ok {
		return nil, "", keyErr("jwk has no e")
	}
	nb, err := decodeMinimalB64(nStr)
	if err != nil {
		return nil, "", keyErr("jwk n: " + err.Error())
	}
	eb, err := decodeMinimalB64(eStr)
	if err != nil {
		return nil, "", keyErr("jwk e: " + err.Error())
	}
	if len(eb) > 4 {
		return nil, "", keyErr("RSA public exponent must be 65537")
	}
	var e int
	for _, b := range eb {
		e = e<<8 | int(b)
	}
	pub = &rsa.PublicKey{N: new(big.Int).SetBytes(nb), E: e}
	if err := CheckPublicKey(pub, p); err != nil {
		return nil, "", err
	}
	return pub, kid, nil
}

func decodeMinimalB64(s string) ([]byte, error) {
	if s == "" {
		return nil, errors.New("empty")
	}
	if !isB64URL([]byte(s)) {
		return nil, errors.New("not unpadded base64url")
	}
	b, err := base64.RawURLEncoding.Strict().DecodeString(s)
	if err != nil {
		return nil, errors.New("not canonical base64url")
	}
	if len(b) == 0 || b[0] == 0 {
		return nil, errors.New("not minimal (leading zero octet)")
	}
	return b, nil
}

// Thumbprint computes the RFC 7638 SHA-256 JWK thumbprint of an RSA public
// key, base64url without padding.
func Thumbprint(pub *rsa.PublicKey) string {
	if pub == nil || pub.N == nil {
		return ""
	}
	j := JWKOf(pub, "")
	sum := sha256.Sum256([]byte(`{"e":"` + j.E + `","kty":"RSA","n":"` + j.N + `"}`))
	return base64.RawURLEncoding.EncodeToString(sum[:])
}

// JWK is the RFC 7517 public form of a key, as served in a JWKS.
type JWK struct {
	Kty string `json:"kty"`
	Kid string `json:"kid,omitempty"`
	Alg string `json:"alg"`
	Use string `json:"use"`
	N   string `json:"n"`
	E   string `json:"e"`
}

// JWKOf returns the public JWK of pub with the given kid.
func JWKOf(pub *rsa.PublicKey, kid string) JWK {
	e := big.NewInt(int64(pub.E)).Bytes()
	return JWK{
		Kty: "RSA", Kid: kid, Alg: "RS256", Use: "sig",
		N: base64.RawURLEncoding.EncodeToString(pub.N.Bytes()),
		E: base64.RawURLEncoding.EncodeToString(e),
	}
}

// ValidProject reports whether s matches ^[a-z0-9][a-z0-9_-]{0,62}$.
func ValidProject(s string) bool { return validProject(s) }

// ValidProjectBytes is ValidProject for a byte slice, without a conversion
// (the server checks a required project on its hot path).
func ValidProjectBytes(s []byte) bool { return validProject(s) }

func validProject[T string | []byte](s T) bool {
	if len(s) == 0 || len(s) > MaxProjectLength {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c >= 'a' && c <= 'z', c >= '0' && c <= '9':
		case (c == '_' || c == '-') && i > 0:
		default:
			return false
		}
	}
	return true
}

// ValidKID reports whether s can be registered as a kid: it matches
// ^[A-Za-z0-9._-]{1,128}$ and is not "." or ".." (a path segment that
// URL resolution would remove, so the key could never be addressed).
func ValidKID(s string) bool { return s != "." && s != ".." && validKIDBytes([]byte(s)) }

// StoredKID reports whether s may name a key already in a store: the kid
// alphabet ^[A-Za-z0-9._-]{1,128}$, including the "." and ".." that
// ValidKID now refuses but that older versions registered. Such a key keeps
// verifying and stays addressable (the admin API's
// /v1/projects/{project}/key?kid= route) until it is removed.
func StoredKID(s string) bool { return validKIDBytes([]byte(s)) }

// validKIDBytes reports whether s is in the kid alphabet (StoredKID); the
// verifier uses it to answer unknown_kid without a store lookup.
func validKIDBytes(s []byte) bool {
	if len(s) == 0 || len(s) > MaxKIDLength {
		return false
	}
	for _, c := range s {
		if kidChar[c] == 0 {
			return false
		}
	}
	return true
}

var kidChar = func() (t [256]byte) {
	for c := 'A'; c <= 'Z'; c++ {
		t[c] = 1
	}
	for c := 'a'; c <= 'z'; c++ {
		t[c] = 1
	}
	for c := '0'; c <= '9'; c++ {
		t[c] = 1
	}
	t['.'], t['_'], t['-'] = 1, 1, 1
	return t
}()

// NewKID returns a fresh random kid (22 base64url characters, 128 bits).
func NewKID() string {
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic("jwtgate: crypto/rand failed: " + err.Error())
	}
	return base64.RawURLEncoding.EncodeToString(b[:])
}
