package loadgen

import (
	"context"
	"crypto"
	"crypto/rsa"
	"crypto/sha256"
	"io"
	"runtime"
	"sync"
	"testing"
	"time"

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

// BenchmarkMintEfficiency measures, interleaved in the same run: raw
// RSA-2048 signing on one goroutine and on every core, and minting
// all-signed tokens on one worker and on every core. It reports
//
//	efficiency: parallel mint rate / (cores × one-goroutine sign rate), the
//	            issue's target (≥ 0.9);
//	scaling:    parallel raw sign rate / (cores × one-goroutine sign rate),
//	            what the machine allowed at the time (on a shared machine it
//	            bounds efficiency);
//	vs-raw:     parallel mint rate / parallel raw sign rate;
//	sign-share: one-worker raw sign time / one-worker mint time (the share
//	            of a token's cost that is its RSA signature).
func BenchmarkMintEfficiency(b *testing.B) {
	ring := &Keyring{Project: "bench", Keys: []*SigningKey{NewSigningKey(enginetest.Key("rsa2048-a"))}}
	mix, _ := ParseMix("valid=1")
	c := runtime.GOMAXPROCS(0)
	const n = 300
	k := ring.Keys[0].Private
	d := sha256.Sum256([]byte("header.payload"))
	var rawOne, rawAll, one, all time.Duration
	sign := func(count, workers int) time.Duration {
		t0 := time.Now()
		var wg sync.WaitGroup
		for range workers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for range count / workers {
					if _, err := rsa.SignPKCS1v15(nil, k, crypto.SHA256, d[:]); err != nil {
						panic(err)
					}
				}
			}()
		}
		wg.Wait()
		return time.Since(t0)
	}
	mint := func(count, workers int) time.Duration {
		t0 := time.Now()
		if _, err := Mint(context.Background(), io.Discard, MintConfig{Keyring: ring, Count: count, Mix: mix,
			Workers: workers, URL: "http://127.0.0.1:8080/v1/verify"}); err != nil {
			b.Fatal(err)
		}
		return time.Since(t0)
	}
	for b.Loop() {
		rawOne += sign(n, 1)
		rawAll += sign(n*c, c)
		one += mint(n, 1)
		all += mint(n*c, c)
	}
	b.ReportMetric(rawOne.Seconds()/all.Seconds(), "efficiency")
	b.ReportMetric(rawOne.Seconds()/rawAll.Seconds(), "scaling")
	b.ReportMetric(rawAll.Seconds()/all.Seconds(), "vs-raw")
	b.ReportMetric(rawOne.Seconds()/one.Seconds(), "sign-share")
	b.ReportMetric(float64(n*c*b.N)/all.Seconds(), "tokens/s")
	b.ReportMetric(float64(n*b.N)/rawOne.Seconds(), "sign/s/core")
}
