package bench

import (
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jwtgate/jwtgate/engine"
	et "github.com/jwtgate/jwtgate/engine/enginetest"
)

var modes = []string{"serial", "parallel"}

// injectColdPercent, when set (only by inject_test.go, under the build tag
// jwtgate_inject_cold), adds that much work to BenchmarkVerify path=cold:
// one extra verification every 100/injectColdPercent calls. It is a
// deliberate regression for testing the benchmark gate.
var injectColdPercent int

// runVerify times v.VerifyInto over toks (cycled) with a reused Claims,
// serially or with RunParallel; every call must return want. With extra > 0,
// every extra-th call verifies its token twice (see injectColdPercent).
func runVerify(b *testing.B, v *engine.Verifier, toks [][]byte, mode string, want error, extra int) {
	b.Helper()
	c := new(engine.Claims)
	for _, t := range toks { // the setup checks every token once
		if err := v.VerifyInto(t, c); err != want { // the engine returns its sentinels unwrapped
			b.Fatalf("setup: got %v, want %v", err, want)
		}
	}
	b.ReportAllocs()
	defer reportCPU(b, processCPU())
	b.ResetTimer()
	if mode == "serial" {
		n := len(toks)
		for i := range b.N {
			if err := v.VerifyInto(toks[i%n], c); err != want {
				b.Fatalf("got %v, want %v", err, want)
			}
			if extra > 0 && i%extra == 0 {
				v.VerifyInto(toks[i%n], c)
			}
		}
		return
	}
	var start atomic.Int64
	var failed atomic.Value
	b.RunParallel(func(pb *testing.PB) {
		c := new(engine.Claims)
		n := len(toks)
		i := int(start.Add(int64(n/2+1))) % n // spread goroutines over the pool
		for k := 0; pb.Next(); k++ {
			if err := v.VerifyInto(toks[i], c); err != want {
				failed.CompareAndSwap(nil, err)
				return
			}
			if extra > 0 && k%extra == 0 {
				v.VerifyInto(toks[i], c)
			}
			if i++; i == n {
				i = 0
			}
		}
	})
	if err := failed.Load(); err != nil {
		b.Fatalf("got %v, want %v", err, want)
	}
}

// BenchmarkVerify: full verification of valid tokens.
//
//	path=cold:   PoolSize distinct tokens, token cache off (every call does
//	             the parse, the key lookup in the LRU and the RSA verify);
//	path=cached: one token repeated, token cache on;
//	path=cached-many: 64 distinct tokens of the same key cycled, all
//	             cached (a hot set of clients rather than a single one).
func BenchmarkVerify(b *testing.B) {
	for _, bits := range []int{2048, 3072, 4096} {
		b.Run("bits="+strconv.Itoa(bits), func(b *testing.B) {
			for _, path := range []string{"cold", "cached", "cached-many"} {
				b.Run("path="+path, func(b *testing.B) {
					for _, mode := range modes {
						b.Run("mode="+mode, func(b *testing.B) {
							pool := Pool(bits)
							var opts []engine.Option
							extra := 0
							switch path {
							case "cold":
								opts = append(opts, engine.WithTokenCacheSize(0))
								if injectColdPercent > 0 {
									extra = 100 / injectColdPercent
								}
							case "cached":
								pool = pool[:1]
							case "cached-many":
								pool = pool[:min(64, len(pool))]
							}
							v, err := NewVerifier(opts...)
							if err != nil {
								b.Fatal(err)
							}
							runVerify(b, v, pool, mode, nil, extra)
						})
					}
				})
			}
		})
	}
}

// rejectTokens returns one token per rejection code for the 2048-bit key.
func rejectTokens() map[string]struct {
	tok  []byte
	want error
} {
	priv := et.Key(KeyName(2048))
	now := time.Now()
	good := et.SignRS256(priv, et.Header(KID(2048)), Payload(now, 0))
	// Flip one signature character in the middle (the last one may carry
	// padding bits a strict decoder refuses as malformed).
	sig := strings.LastIndexByte(good, '.') + 40
	flip := byte('A')
	if good[sig] == 'A' {
		flip = 'B'
	}
	bad := good[:sig] + string(flip) + good[sig+1:]
	// A character outside base64url in the payload.
	p := strings.IndexByte(good, '.') + 10
	malformed := good[:p] + "*" + good[p+1:]
	expired := Payload(now, 0)
	expired["iat"], expired["exp"] = now.Unix()-7200, now.Unix()-3600
	large := make([]byte, engine.DefaultMaxTokenBytes+1)
	copy(large, good)
	return map[string]struct {
		tok  []byte
		want error
	}{
		"expired":               {[]byte(et.SignRS256(priv, et.Header(KID(2048)), expired)), engine.ErrExpired},
		"unknown_kid":           {[]byte(et.SignRS256(priv, et.Header("no-such-kid"), Payload(now, 0))), engine.ErrUnknownKID},
		"unsupported_algorithm": {[]byte(et.SignHS256(et.PublicPEM(&priv.PublicKey), map[string]any{"alg": "HS256", "kid": KID(2048), "typ": "JWT"}, Payload(now, 0))), engine.ErrUnsupportedAlgorithm},
		"malformed":             {[]byte(malformed), engine.ErrMalformed},
		"token_too_large":       {large, engine.ErrTokenTooLarge},
		"invalid_signature":     {[]byte(bad), engine.ErrInvalidSignature},
	}
}

// RejectCodes are the rejections BenchmarkReject measures, cheapest first;
// invalid_signature pays for the RSA operation.
var RejectCodes = []string{"expired", "unknown_kid", "unsupported_algorithm", "malformed", "token_too_large", "invalid_signature"}

// BenchmarkReject: the engine refusing bad tokens, with the default options
// (token cache on, negative kid cache on).
func BenchmarkReject(b *testing.B) {
	toks := rejectTokens()
	for _, code := range RejectCodes {
		b.Run("code="+code, func(b *testing.B) {
			for _, mode := range modes {
				b.Run("mode="+mode, func(b *testing.B) {
					v, err := NewVerifier()
					if err != nil {
						b.Fatal(err)
					}
					t := toks[code]
					runVerify(b, v, [][]byte{t.tok}, mode, t.want, 0)
				})
			}
		})
	}
}
