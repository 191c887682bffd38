package engine

import (
	"runtime"
	"sync/atomic"
	"time"
)

// coarseClockPeriod is how often the coarse clock is refreshed. Token times
// are whole seconds, so a few milliseconds of lag is immaterial, and it
// saves a time.Now (about 50 ns here) on every verify.
const coarseClockPeriod = 5 * time.Millisecond

// coarseClock holds the Unix time in nanoseconds, refreshed by a ticker.
type coarseClock struct {
	nanos atomic.Int64
	stop  chan struct{}
}

func startCoarseClock() *coarseClock {
	c := &coarseClock{stop: make(chan struct{})}
	c.nanos.Store(time.Now().UnixNano())
	go c.run()
	return c
}

func (c *coarseClock) run() {
	t := time.NewTicker(coarseClockPeriod)
	defer t.Stop()
	for {
		select {
		case <-t.C:
			c.nanos.Store(time.Now().UnixNano())
		case <-c.stop:
			return
		}
	}
}

// attachClock gives v a coarse clock when it uses the real time, and stops
// the clock's goroutine when v is closed or becomes unreachable.
func attachClock(v *Verifier, realTime bool) {
	if !realTime {
		return
	}
	v.clock = startCoarseClock()
	runtime.AddCleanup(v, func(c *coarseClock) { c.close() }, v.clock)
}

func (c *coarseClock) close() {
	defer func() { _ = recover() }() // Close and the cleanup may both run
	close(c.stop)
}

// nowNanos is the verify path's clock: coarse when real, else the
// configured clock (tests, replays).
func (v *Verifier) nowNanos() int64 {
	if v.clock != nil && !v.clockOff.Load() {
		return v.clock.nanos.Load()
	}
	return v.cfg.now().UnixNano()
}

// Close stops the Verifier's background clock and registry loads. A Verifier that is simply
// dropped is cleaned up by the garbage collector too; Close makes it prompt.
// Verify keeps working after Close (it reads the time directly).
func (v *Verifier) Close() {
	v.keys.reg.closed.Store(true)
	if c := v.clock; c != nil {
		v.clockOff.Store(true)
		c.close()
	}
}
