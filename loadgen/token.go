package loadgen

import (
	"crypto"
	"crypto/hmac"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"math/rand/v2"
	"strconv"

	"github.com/jwtgate/jwtgate/engine"
)

var b64 = base64.RawURLEncoding

// futureOffset is how far in the future not_yet_valid and issued_in_future
// tokens put nbf and iat: far enough that they stay wrong for longer than
// any valid token lives.
const futureOffset = 25 * 3600

// tokenParams is what a token builder needs besides its class and index.
type tokenParams struct {
	ring         *Keyring
	active       []*SigningKey
	inactive     *SigningKey
	audJSON      []byte // `["project"]`
	otherAudJSON []byte // `["project-not"]`
	extra        []byte // `,"k":"v",...` (already JSON), may be empty
	ttl          int64
	maxTTL       int64
	maxTokBytes  int
	seed         string // distinguishes runs in jti
}

// builder makes tokens; one per worker, not safe for concurrent use.
type builder struct {
	p    *tokenParams
	rng  *rand.Rand
	hdr  []byte
	pay  []byte
	tok  []byte
	sigs int // RSA signatures made
}

func newBuilder(p *tokenParams, seed uint64) *builder {
	return &builder{p: p, rng: rand.New(rand.NewPCG(seed, 0x6c6f616467656e))}
}

func appendHeader(dst []byte, alg, kid string, extra string) []byte {
	dst = append(dst, `{"alg":"`...)
	dst = append(dst, alg...)
	dst = append(dst, '"')
	if kid != "" {
		dst = append(dst, `,"kid":"`...)
		dst = append(dst, kid...)
		dst = append(dst, '"')
	}
	dst = append(dst, extra...)
	return append(dst, '}')
}

type payload struct {
	aud           []byte
	iat, exp, nbf int64
	noIat         bool
	hasNbf        bool
	dupExp        bool
	pad           int
}

func (b *builder) appendPayload(dst []byte, cls Class, idx int, p payload) []byte {
	dst = append(dst, `{"aud":`...)
	dst = append(dst, p.aud...)
	if !p.noIat {
		dst = append(dst, `,"iat":`...)
		dst = strconv.AppendInt(dst, p.iat, 10)
	}
	dst = append(dst, `,"exp":`...)
	dst = strconv.AppendInt(dst, p.exp, 10)
	if p.dupExp {
		dst = append(dst, `,"exp":`...)
		dst = strconv.AppendInt(dst, p.exp, 10)
	}
	if p.hasNbf {
		dst = append(dst, `,"nbf":`...)
		dst = strconv.AppendInt(dst, p.nbf, 10)
	}
	dst = append(dst, `,"sub":"user-`...)
	dst = strconv.AppendInt(dst, int64(idx%100000), 10)
	dst = append(dst, `","jti":"`...)
	dst = append(dst, b.p.seed...)
	dst = append(dst, '-')
	dst = append(dst, cls.String()...)
	dst = append(dst, '-')
	dst = strconv.AppendInt(dst, int64(idx), 10)
	dst = append(dst, '"')
	dst = append(dst, b.p.extra...)
	if p.pad > 0 {
		dst = append(dst, `,"pad":"`...)
		for range p.pad {
			dst = append(dst, 'x')
		}
		dst = append(dst, '"')
	}
	return append(dst, '}')
}

// signingInput sets b.tok to base64url(hdr) "." base64url(pay).
func (b *builder) signingInput() {
	b.tok = b64.AppendEncode(b.tok[:0], b.hdr)
	b.tok = append(b.tok, '.')
	b.tok = b64.AppendEncode(b.tok, b.pay)
}

func (b *builder) signRS256(k *SigningKey) {
	d := sha256.Sum256(b.tok)
	sig, err := rsa.SignPKCS1v15(nil, k.Private, crypto.SHA256, d[:])
	if err != nil {
		panic("loadgen: RSA signing failed: " + err.Error()) // only on a broken key, checked at load
	}
	b.sigs++
	b.tok = append(b.tok, '.')
	b.tok = b64.AppendEncode(b.tok, sig)
}

// randomSig appends "." and n random bytes in base64url: a signature of
// the right length that verifies under no key.
func (b *builder) randomSig(n int) {
	var buf [512]byte
	if n > len(buf) {
		n = len(buf)
	}
	for i := 0; i < n; i += 8 {
		v := b.rng.Uint64()
		for j := 0; j < 8 && i+j < n; j++ {
			buf[i+j] = byte(v >> (8 * j))
		}
	}
	b.tok = append(b.tok, '.')
	b.tok = b64.AppendEncode(b.tok, buf[:n])
}

// build sets b.tok to a token of class cls (its idx-th in the stream,
// counted within the class), minted at now (Unix seconds). For
// MissingToken it returns false (the request carries no Authorization).
func (b *builder) build(cls Class, idx int, now int64) bool {
	p := b.p
	k := p.active[idx%len(p.active)]
	valid := payload{aud: p.audJSON, iat: now, exp: now + p.ttl}
	b.hdr, b.pay = b.hdr[:0], b.pay[:0]
	switch cls.Code() {
	case 0: // valid
		b.hdr = appendHeader(b.hdr, "RS256", k.KID, `,"typ":"JWT"`)
		b.pay = b.appendPayload(b.pay, cls, idx, valid)
		b.signingInput()
		b.signRS256(k)
	case engine.CodeMissingToken:
		b.tok = b.tok[:0]
		return false
	case engine.CodeTokenTooLarge:
		b.hdr = appendHeader(b.hdr, "RS256", k.KID, `,"typ":"JWT"`)
		pl := valid
		pl.pad = p.maxTokBytes*3/4 + 64 // base64 grows it by 4/3: over the limit
		b.pay = b.appendPayload(b.pay, cls, idx, pl)
		b.signingInput()
		b.randomSig(k.Private.Size())
	case engine.CodeMalformed:
		b.hdr = appendHeader(b.hdr, "RS256", k.KID, `,"typ":"JWT"`)
		switch idx % 4 {
		case 0: // two parts
			b.pay = b.appendPayload(b.pay, cls, idx, valid)
			b.signingInput()
		case 1: // padded base64
			b.pay = b.appendPayload(b.pay, cls, idx, valid)
			b.signingInput()
			b.tok = append(b.tok, "=="...)
			b.randomSig(k.Private.Size())
		case 2: // payload is not an object
			b.pay = append(b.pay, `["not","an","object"]`...)
			b.signingInput()
			b.randomSig(k.Private.Size())
		default: // duplicate member name
			pl := valid
			pl.dupExp = true
			b.pay = b.appendPayload(b.pay, cls, idx, pl)
			b.signingInput()
			b.randomSig(k.Private.Size())
		}
	case engine.CodeUnsupportedAlgorithm:
		b.pay = b.appendPayload(b.pay, cls, idx, valid)
		if idx%2 == 0 {
			// alg none; the signature part is non-empty so the token is
			// well-formed and the refusal is about the algorithm.
			b.hdr = appendHeader(b.hdr, "none", k.KID, `,"typ":"JWT"`)
			b.signingInput()
			b.randomSig(32)
		} else {
			// HS256 keyed with the public key's PEM: algorithm confusion.
			b.hdr = appendHeader(b.hdr, "HS256", k.KID, `,"typ":"JWT"`)
			b.signingInput()
			m := hmac.New(sha256.New, k.PublicPEM)
			m.Write(b.tok)
			var sum [sha256.Size]byte
			b.tok = append(b.tok, '.')
			b.tok = b64.AppendEncode(b.tok, m.Sum(sum[:0]))
		}
	case engine.CodeUnsupportedHeader:
		switch idx % 3 {
		case 0:
			b.hdr = appendHeader(b.hdr, "RS256", k.KID, `,"typ":"JWT","crit":["lg"],"lg":1`)
		case 1:
			b.hdr = appendHeader(b.hdr, "RS256", k.KID, `,"typ":"JWT","cty":"JWT"`)
		default:
			b.hdr = appendHeader(b.hdr, "RS256", k.KID, `,"typ":"at+jwt"`)
		}
		b.pay = b.appendPayload(b.pay, cls, idx, valid)
		b.signingInput()
		b.signRS256(k)
	case engine.CodeMissingKID:
		b.hdr = appendHeader(b.hdr, "RS256", "", `,"typ":"JWT"`)
		b.pay = b.appendPayload(b.pay, cls, idx, valid)
		b.signingInput()
		b.randomSig(k.Private.Size())
	case engine.CodeUnknownKID:
		var r [8]byte
		v := b.rng.Uint64()
		for i := range r {
			r[i] = byte(v >> (8 * i))
		}
		var kid [len("lg-unknown-") + 16]byte
		copy(kid[:], "lg-unknown-")
		hex.Encode(kid[len("lg-unknown-"):], r[:])
		b.hdr = appendHeader(b.hdr, "RS256", string(kid[:]), `,"typ":"JWT"`)
		b.pay = b.appendPayload(b.pay, cls, idx, valid)
		b.signingInput()
		b.randomSig(k.Private.Size())
	case engine.CodeKeyInactive:
		ik := p.inactive
		b.hdr = appendHeader(b.hdr, "RS256", ik.KID, `,"typ":"JWT"`)
		b.pay = b.appendPayload(b.pay, cls, idx, valid)
		b.signingInput()
		b.signRS256(ik)
	case engine.CodeMissingClaim:
		b.hdr = appendHeader(b.hdr, "RS256", k.KID, `,"typ":"JWT"`)
		pl := valid
		pl.noIat = true
		b.pay = b.appendPayload(b.pay, cls, idx, pl)
		b.signingInput()
		b.signRS256(k)
	case engine.CodeExpired:
		b.hdr = appendHeader(b.hdr, "RS256", k.KID, `,"typ":"JWT"`)
		pl := valid
		pl.iat = now - 7200
		pl.exp = pl.iat + min(p.ttl, 3600)
		b.pay = b.appendPayload(b.pay, cls, idx, pl)
		b.signingInput()
		b.signRS256(k)
	case engine.CodeNotYetValid:
		b.hdr = appendHeader(b.hdr, "RS256", k.KID, `,"typ":"JWT"`)
		pl := valid
		pl.hasNbf = true
		pl.nbf = now + futureOffset
		b.pay = b.appendPayload(b.pay, cls, idx, pl)
		b.signingInput()
		b.signRS256(k)
	case engine.CodeIssuedInFuture:
		b.hdr = appendHeader(b.hdr, "RS256", k.KID, `,"typ":"JWT"`)
		pl := valid
		pl.iat = now + futureOffset
		pl.exp = pl.iat + p.ttl
		b.pay = b.appendPayload(b.pay, cls, idx, pl)
		b.signingInput()
		b.signRS256(k)
	case engine.CodeTTLExceeded:
		b.hdr = appendHeader(b.hdr, "RS256", k.KID, `,"typ":"JWT"`)
		pl := valid
		pl.exp = now + p.maxTTL + 60
		b.pay = b.appendPayload(b.pay, cls, idx, pl)
		b.signingInput()
		b.signRS256(k)
	case engine.CodeAudienceMismatch:
		b.hdr = appendHeader(b.hdr, "RS256", k.KID, `,"typ":"JWT"`)
		pl := valid
		pl.aud = p.otherAudJSON
		b.pay = b.appendPayload(b.pay, cls, idx, pl)
		b.signingInput()
		b.signRS256(k)
	case engine.CodeInvalidSignature:
		// Well-formed and within every claim rule; the signature has the
		// key's length but is random, so only the RSA check can refuse it.
		b.hdr = appendHeader(b.hdr, "RS256", k.KID, `,"typ":"JWT"`)
		b.pay = b.appendPayload(b.pay, cls, idx, valid)
		b.signingInput()
		b.randomSig(k.Private.Size())
	default:
		panic("loadgen: no builder for class " + cls.String())
	}
	return true
}

// needsSignature reports whether tokens of cls cost an RSA signature: those
// that a lax server would accept if the checked flaw were ignored, so the
// signature must be genuine for the test to mean anything.
func needsSignature(cls Class) bool {
	switch cls.Code() {
	case 0, engine.CodeUnsupportedHeader, engine.CodeKeyInactive, engine.CodeMissingClaim, engine.CodeExpired,
		engine.CodeNotYetValid, engine.CodeIssuedInFuture, engine.CodeTTLExceeded, engine.CodeAudienceMismatch:
		return true
	}
	return false
}
