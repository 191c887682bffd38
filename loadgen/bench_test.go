package loadgen

import (
	"context"
	"crypto"
	"crypto/rsa"
	"crypto/sha256"
	"io"
	"runtime"
	"testing"

	"github.com/jwtgate/jwtgate/engine/enginetest"
	"github.com/valyala/fasthttp"
)

// BenchmarkSignRS256 is the single-core baseline: one RSA-2048
// PKCS#1 v1.5 signature per op.
func BenchmarkSignRS256(b *testing.B) {
	k := enginetest.Key("rsa2048-a")
	k.Precompute()
	d := sha256.Sum256([]byte("header.payload"))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := rsa.SignPKCS1v15(nil, k, crypto.SHA256, d[:]); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkMint mints all-valid (all-signed) tokens on every core; one op
// is one token. Compare its ns/op with BenchmarkSignRS256's divided by the
// number of cores: the ratio sign/(cores × mint) is the parallel efficiency
// (target ≥ 0.9).
func BenchmarkMint(b *testing.B) {
	ring := &Keyring{Project: "bench", Keys: []*SigningKey{NewSigningKey(enginetest.Key("rsa2048-a"))}}
	mix, _ := ParseMix("valid=1")
	b.ReportMetric(float64(runtime.GOMAXPROCS(0)), "cores")
	b.ResetTimer()
	if _, err := Mint(context.Background(), io.Discard, MintConfig{Keyring: ring, Count: max(b.N, 1), Mix: mix,
		URL: "http://127.0.0.1:8080/v1/verify"}); err != nil {
		b.Fatal(err)
	}
}

// BenchmarkMintDefaultMix mints the default mix with --unique 1000: most
// tokens reuse a signature, so this is the cost of everything but RSA.
func BenchmarkMintDefaultMix(b *testing.B) {
	ring := &Keyring{Project: "bench", Keys: []*SigningKey{NewSigningKey(enginetest.Key("rsa2048-a"))}}
	mix, _ := ParseMix(DefaultMix)
	b.ResetTimer()
	if _, err := Mint(context.Background(), io.Discard, MintConfig{Keyring: ring, Count: max(b.N, 1), Mix: mix,
		Unique: 1000, URL: "http://127.0.0.1:8080/v1/verify"}); err != nil {
		b.Fatal(err)
	}
}

// BenchmarkCheck is the per-response verdict check of the send loop.
func BenchmarkCheck(b *testing.B) {
	var resp fasthttp.Response
	resp.SetStatusCode(401)
	resp.Header.Set("WWW-Authenticate", `Bearer error="invalid_token", error_description="ttl_exceeded"`)
	resp.SetBodyString(`{"valid":false,"error":"ttl_exceeded","message":"x"}`)
	exp, _ := ParseClass("ttl_exceeded")
	b.ReportAllocs()
	for b.Loop() {
		if _, ok := Check(exp, resp.StatusCode(), resp.Header.Peek("WWW-Authenticate"), resp.Body()); !ok {
			b.Fatal("mismatch")
		}
	}
}
