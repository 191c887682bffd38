package engine

import (
	"context"
	"errors"
	"runtime"
	"testing"
	"time"

	et "github.com/jwtgate/jwtgate/engine/enginetest"
)

func TestCoarseClock(t *testing.T) {
	v, err := New(NewMemoryStore())
	if err != nil {
		t.Fatal(err)
	}
	if v.clock == nil {
		t.Fatal("a Verifier on real time has no coarse clock")
	}
	if d := time.Duration(time.Now().UnixNano() - v.nowNanos()); d < -time.Second || d > time.Second {
		t.Fatalf("coarse clock is %v behind", d)
	}
	before := runtime.NumGoroutine()
	v.Close()
	v.Close() // idempotent
	deadline := time.Now().Add(2 * time.Second)
	for runtime.NumGoroutine() >= before && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	if runtime.NumGoroutine() >= before {
		t.Fatal("Close did not stop the clock goroutine")
	}
	if d := time.Duration(time.Now().UnixNano() - v.nowNanos()); d < -time.Second || d > time.Second {
		t.Fatalf("after Close the clock is %v behind", d)
	}
	fixed := time.Unix(1_800_000_000, 0)
	w, _ := New(NewMemoryStore(), WithClock(func() time.Time { return fixed }))
	if w.clock != nil || w.nowNanos() != fixed.UnixNano() {
		t.Fatal("WithClock is not used as is")
	}
}

// A coarse clock that lags the real time (a tick late, or a ticker stalled
// on a loaded machine) must not refuse a fresh token: with leeway 0, a
// token issued in the current second was refused as issued_in_future at
// second boundaries. A token really from the future is still refused.
func TestLaggingCoarseClockAcceptsFreshToken(t *testing.T) {
	priv := et.Key("rsa2048-a")
	v, err := New(NewMemoryStore(), WithLeeway(0), WithTokenCacheSize(0))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := v.AddKey(context.Background(), &Key{KID: "k", Project: "p", Public: &priv.PublicKey}); err != nil {
		t.Fatal(err)
	}
	v.clock.close() // stop the ticker: the verify path keeps reading the stored time
	v.clock.nanos.Store(time.Now().Add(-1500 * time.Millisecond).UnixNano())

	fresh := et.SignRS256(priv, et.Header("k"), et.Claims("p", time.Now().Unix(), 60))
	if _, err := v.Verify([]byte(fresh)); err != nil {
		t.Fatalf("token issued now, coarse clock 1.5 s behind: %v, want valid", err)
	}
	nbf := et.Claims("p", time.Now().Unix(), 60)
	nbf["nbf"] = time.Now().Unix()
	if _, err := v.Verify([]byte(et.SignRS256(priv, et.Header("k"), nbf))); err != nil {
		t.Fatalf("token valid from now, coarse clock 1.5 s behind: %v, want valid", err)
	}
	future := et.SignRS256(priv, et.Header("k"), et.Claims("p", time.Now().Unix()+5, 60))
	if _, err := v.Verify([]byte(future)); !errors.Is(err, ErrIssuedInFuture) {
		t.Fatalf("token issued 5 s from now: %v, want %v", err, ErrIssuedInFuture)
	}
}
