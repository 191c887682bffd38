package engine_test

import (
	"context"
	"crypto"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/jwtgate/jwtgate/engine"
	et "github.com/jwtgate/jwtgate/engine/enginetest"
	"github.com/jwtgate/jwtgate/internal/cpuinfo"
)

// The engine's own benchmarks (the full comparative suite is in bench/).
// Each verify benchmark has its baselines beside it in the same run:
// crypto/rsa alone (sha256 + rsa.VerifyPKCS1v15 on a decoded signature) and
// golang-jwt/jwt/v5 ParseWithClaims with the same rules.

var benchKeys = map[int]string{2048: "rsa2048-a", 3072: "rsa3072", 4096: "rsa4096"}

type benchEnv struct {
	v      *engine.Verifier
	priv   *rsa.PrivateKey
	tokens [][]byte // distinct valid tokens
}

func newBenchEnv(b *testing.B, bits, tokenCache, n int) *benchEnv {
	b.Helper()
	priv := et.Key(benchKeys[bits])
	store := engine.NewMemoryStore()
	now := time.Now()
	v, err := engine.New(store, engine.WithTokenCacheSize(tokenCache), engine.WithClock(func() time.Time { return now }))
	if err != nil {
		b.Fatal(err)
	}
	if _, err := v.AddKey(context.Background(), &engine.Key{KID: "k1", Project: "myapp", Public: &priv.PublicKey}); err != nil {
		b.Fatal(err)
	}
	env := &benchEnv{v: v, priv: priv}
	for i := range n {
		claims := map[string]any{"aud": []string{"myapp"}, "iat": now.Unix(), "exp": now.Unix() + 300,
			"sub": fmt.Sprintf("user-%d", i), "groupRef": "group-42", "consumerRef": "consumer-7", "jti": fmt.Sprintf("%016d", i)}
		env.tokens = append(env.tokens, []byte(et.SignRS256(priv, et.Header("k1"), claims)))
	}
	return env
}

func BenchmarkVerify(b *testing.B) {
	for _, bits := range []int{2048, 3072, 4096} {
		b.Run(fmt.Sprintf("bits=%d/path=cold", bits), func(b *testing.B) {
			env := newBenchEnv(b, bits, 0, 64)
			benchLoop(b, env.v, env.tokens)
		})
		b.Run(fmt.Sprintf("bits=%d/path=cold/mode=parallel", bits), func(b *testing.B) {
			env := newBenchEnv(b, bits, 0, 64)
			benchParallel(b, env.v, env.tokens)
		})
		b.Run(fmt.Sprintf("bits=%d/path=rawrsa", bits), func(b *testing.B) {
			env := newBenchEnv(b, bits, 0, 1)
			benchRawRSA(b, &env.priv.PublicKey, string(env.tokens[0]))
		})
	}
	b.Run("bits=2048/path=golang-jwt", func(b *testing.B) {
		env := newBenchEnv(b, 2048, 0, 1)
		benchGolangJWT(b, &env.priv.PublicKey, string(env.tokens[0]))
	})
	b.Run("bits=2048/path=cached", func(b *testing.B) {
		env := newBenchEnv(b, 2048, 1024, 1)
		benchLoop(b, env.v, env.tokens)
	})
	b.Run("bits=2048/path=cached/mode=parallel", func(b *testing.B) {
		env := newBenchEnv(b, 2048, 1024, 1)
		benchParallel(b, env.v, env.tokens)
	})
}

func BenchmarkReject(b *testing.B) {
	env := newBenchEnv(b, 2048, 0, 1)
	now := time.Now().Unix()
	cases := []struct{ code, token string }{
		{"expired", et.SignRS256(env.priv, et.Header("k1"), map[string]any{"aud": "myapp", "iat": now - 900, "exp": now - 300})},
		{"unknown_kid", et.SignRS256(env.priv, et.Header("nope"), map[string]any{"aud": "myapp", "iat": now, "exp": now + 300})},
		{"unsupported_algorithm", et.SigningInput(map[string]any{"alg": "none", "kid": "k1"}, map[string]any{"aud": "myapp"}) + ".AA"},
		{"malformed", "eyJhbGciOiJSUzI1NiJ9.eyJhdWQiOiJteWFwcCJ9.@@@@"},
		{"token_too_large", strings.Repeat("a", 9000)},
		{"invalid_signature", string(env.tokens[0][:len(env.tokens[0])-4]) + "AAAA"},
	}
	for _, tc := range cases {
		b.Run("code="+tc.code, func(b *testing.B) {
			tok := []byte(tc.token)
			c := new(engine.Claims)
			want, _ := engine.ParseCode(tc.code)
			if err := env.v.VerifyInto(tok, c); engine.CodeOf(err) != want {
				b.Fatalf("setup: got %v, want %s", err, tc.code)
			}
			b.ReportAllocs()
			b.ResetTimer()
			for b.Loop() {
				_ = env.v.VerifyInto(tok, c)
			}
		})
	}
}

func benchLoop(b *testing.B, v *engine.Verifier, tokens [][]byte) {
	c := new(engine.Claims)
	for _, t := range tokens {
		if err := v.VerifyInto(t, c); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportAllocs()
	b.ResetTimer()
	t := cpuinfo.StartCPUTimer(b) // cpu-ns/op: CPU time, unaffected by waiting for a core
	i := 0
	for b.Loop() {
		if err := v.VerifyInto(tokens[i%len(tokens)], c); err != nil {
			b.Fatal(err)
		}
		i++
	}
	t.Stop(i)
}

func benchParallel(b *testing.B, v *engine.Verifier, tokens [][]byte) {
	var seq atomic.Uint64
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		c := new(engine.Claims)
		i := int(seq.Add(7919))
		for pb.Next() {
			if err := v.VerifyInto(tokens[i%len(tokens)], c); err != nil {
				b.Fatal(err)
			}
			i++
		}
	})
}

func benchRawRSA(b *testing.B, pub *rsa.PublicKey, token string) {
	dot := strings.LastIndexByte(token, '.')
	sig, err := base64.RawURLEncoding.DecodeString(token[dot+1:])
	if err != nil {
		b.Fatal(err)
	}
	in := []byte(token[:dot])
	b.ReportAllocs()
	b.ResetTimer()
	t := cpuinfo.StartCPUTimer(b)
	n := 0
	for b.Loop() {
		d := sha256.Sum256(in)
		if err := rsa.VerifyPKCS1v15(pub, crypto.SHA256, d[:], sig); err != nil {
			b.Fatal(err)
		}
		n++
	}
	t.Stop(n)
}

func benchGolangJWT(b *testing.B, pub *rsa.PublicKey, token string) {
	p := jwt.NewParser(jwt.WithValidMethods([]string{"RS256"}), jwt.WithAudience("myapp"),
		jwt.WithExpirationRequired(), jwt.WithIssuedAt(), jwt.WithLeeway(30*time.Second))
	kf := func(*jwt.Token) (any, error) { return pub, nil }
	if _, err := p.ParseWithClaims(token, &jwt.RegisteredClaims{}, kf); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		if _, err := p.ParseWithClaims(token, &jwt.RegisteredClaims{}, kf); err != nil {
			b.Fatal(err)
		}
	}
}
