package bench

import (
	"bytes"
	"crypto"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"strconv"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	josejwt "github.com/go-jose/go-jose/v4/jwt"
	gjwt "github.com/golang-jwt/jwt/v5"
	"github.com/lestrrat-go/jwx/v3/jwa"
	jwxjwt "github.com/lestrrat-go/jwx/v3/jwt"

	"github.com/jwtgate/jwtgate/engine"
	et "github.com/jwtgate/jwtgate/engine/enginetest"
	"github.com/jwtgate/jwtgate/internal/cpuinfo"
)

// Leeway is the clock skew every library is given.
const Leeway = 30 * time.Second

// peer verifies one token under the benchmark's rules (RS256 only, the key
// of the token's kid, exp required and not past, iat not in the future, aud
// containing Project, Leeway); it returns nil when the token is accepted.
type peer struct {
	name string
	// new prepares to verify; tok is the benchmark's token (only the raw
	// floor uses it, to decode the signature ahead of time).
	new func(pub *rsa.PublicKey, tok []byte) func(tok []byte) error
}

// PeerNames lists BenchmarkPeers' libraries: raw crypto/rsa over the
// pre-decoded signature (the floor), raw with the base64 decode, the
// engine cold and cached, and the three Go JWT libraries.
var PeerNames = []string{"rsa", "rsa-b64", "jwtgate", "jwtgate-cached", "golang-jwt", "jwx", "go-jose"}

var errRejected = errors.New("rejected")

func peers() []peer {
	return []peer{
		{"rsa", func(pub *rsa.PublicKey, tok []byte) func([]byte) error {
			// The floor: only sha256 over the signing input and the RSA
			// operation, on the benchmark token's signature decoded here.
			d := bytes.LastIndexByte(tok, '.')
			sig, err := base64.RawURLEncoding.DecodeString(string(tok[d+1:]))
			if err != nil {
				panic(err)
			}
			return func(tok []byte) error {
				h := sha256.Sum256(tok[:d])
				return rsa.VerifyPKCS1v15(pub, crypto.SHA256, h[:], sig)
			}
		}},
		{"rsa-b64", func(pub *rsa.PublicKey, _ []byte) func([]byte) error {
			buf := make([]byte, 1024)
			return func(tok []byte) error {
				d := bytes.LastIndexByte(tok, '.')
				n, err := base64.RawURLEncoding.Decode(buf, tok[d+1:])
				if err != nil {
					return err
				}
				h := sha256.Sum256(tok[:d])
				return rsa.VerifyPKCS1v15(pub, crypto.SHA256, h[:], buf[:n])
			}
		}},
		{"jwtgate", engineVerify(engine.WithTokenCacheSize(0))},
		{"jwtgate-cached", engineVerify()},
		{"golang-jwt", func(pub *rsa.PublicKey, _ []byte) func([]byte) error {
			keys := map[string]*rsa.PublicKey{KID(2048): pub}
			keyfunc := func(t *gjwt.Token) (any, error) {
				kid, _ := t.Header["kid"].(string)
				if k, ok := keys[kid]; ok {
					return k, nil
				}
				return nil, errRejected
			}
			p := gjwt.NewParser(gjwt.WithValidMethods([]string{"RS256"}), gjwt.WithAudience(Project),
				gjwt.WithExpirationRequired(), gjwt.WithIssuedAt(), gjwt.WithLeeway(Leeway))
			return func(tok []byte) error {
				// The library takes a string; a server holds []byte.
				_, err := p.ParseWithClaims(string(tok), &gjwt.RegisteredClaims{}, keyfunc)
				return err
			}
		}},
		{"jwx", func(pub *rsa.PublicKey, _ []byte) func([]byte) error {
			return func(tok []byte) error {
				_, err := jwxjwt.Parse(tok, jwxjwt.WithKey(jwa.RS256(), pub), jwxjwt.WithValidate(true),
					jwxjwt.WithAudience(Project), jwxjwt.WithAcceptableSkew(Leeway),
					jwxjwt.WithRequiredClaim("exp"), jwxjwt.WithRequiredClaim("iat"))
				return err
			}
		}},
		{"go-jose", func(pub *rsa.PublicKey, _ []byte) func([]byte) error {
			algs := []jose.SignatureAlgorithm{jose.RS256}
			aud := josejwt.Audience{Project}
			return func(tok []byte) error {
				t, err := josejwt.ParseSigned(string(tok), algs)
				if err != nil {
					return err
				}
				var cl josejwt.Claims
				if err := t.Claims(pub, &cl); err != nil {
					return err
				}
				if cl.Expiry == nil || cl.IssuedAt == nil {
					return errRejected
				}
				return cl.ValidateWithLeeway(josejwt.Expected{AnyAudience: aud, Time: time.Now()}, Leeway)
			}
		}},
	}
}

func engineVerify(opts ...engine.Option) func(*rsa.PublicKey, []byte) func([]byte) error {
	return func(*rsa.PublicKey, []byte) func([]byte) error {
		v, err := NewVerifier(opts...)
		if err != nil {
			panic(err)
		}
		c := new(engine.Claims)
		return func(tok []byte) error { return v.VerifyInto(tok, c) }
	}
}

// BenchmarkPeers: every library on the same RSA-2048 token and the same
// rules, serially; the raw floor and the engine (cold) also at 3072 and
// 4096 bits, for BenchmarkVerify's ratios. Setup checks each library
// accepts the token and refuses a tampered one, an expired one and one for
// another audience.
func BenchmarkPeers(b *testing.B) {
	priv := et.Key(KeyName(2048))
	now := time.Now()
	hdr := et.Header(KID(2048))
	tampered := rejectTokens()["invalid_signature"].tok
	expired := Payload(now, 1)
	expired["iat"], expired["exp"] = now.Unix()-7200, now.Unix()-3600
	otherAud := Payload(now, 2)
	otherAud["aud"] = []string{"other"}
	bad := map[string][]byte{
		"tampered":  tampered,
		"expired":   []byte(et.SignRS256(priv, hdr, expired)),
		"other-aud": []byte(et.SignRS256(priv, hdr, otherAud)),
	}
	for _, p := range peers() {
		for _, bits := range []int{2048, 3072, 4096} {
			if bits != 2048 && p.name != "rsa" && p.name != "jwtgate" {
				continue
			}
			b.Run("lib="+p.name+"/bits="+strconv.Itoa(bits), func(b *testing.B) {
				tok := Pool(bits)[0]
				verify := p.new(&et.Key(KeyName(bits)).PublicKey, tok)
				if p.name != "rsa" && p.name != "rsa-b64" { // the raw floors check no claims
					for what, t := range bad {
						if err := verify(t); err == nil {
							b.Fatalf("setup: %s accepted a %s token", p.name, what)
						}
					}
				}
				if err := verify(tok); err != nil {
					b.Fatalf("setup: %s refused the token: %v", p.name, err)
				}
				b.ReportAllocs()
				b.ResetTimer()
				// cpu-ns/op: CPU time, what `openssl speed` reports too
				t := cpuinfo.StartCPUTimer(b)
				for range b.N {
					if err := verify(tok); err != nil {
						b.Fatal(err)
					}
				}
				t.Stop(b.N)
			})
		}
	}
}
