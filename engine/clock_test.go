package engine

import (
	"runtime"
	"testing"
	"time"
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
