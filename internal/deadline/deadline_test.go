package deadline

import (
	"errors"
	"net"
	"os"
	"testing"
	"time"
)

// countingConn counts the deadline updates that reach it.
type countingConn struct {
	net.Conn
	reads, writes int
}

func (c *countingConn) SetReadDeadline(t time.Time) error {
	c.reads++
	return c.Conn.SetReadDeadline(t)
}

func (c *countingConn) SetWriteDeadline(t time.Time) error {
	c.writes++
	return c.Conn.SetWriteDeadline(t)
}

func (c *countingConn) SetDeadline(t time.Time) error {
	c.reads++
	c.writes++
	return c.Conn.SetDeadline(t)
}

// loopbackPair returns the two ends of a TCP connection on 127.0.0.1.
func loopbackPair(t *testing.T) (server, client net.Conn) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	client, err = net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	server, err = ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { client.Close(); server.Close() })
	return server, client
}

// fasthttp's sequence on a keep-alive connection (idle deadline, read,
// read deadline, write deadline, write) reaches the socket's timers only
// now and then, not three times per request.
func TestDeadlinesCoalesced(t *testing.T) {
	s, cl := loopbackPair(t)
	cc := &countingConn{Conn: s}
	c := &Conn{Conn: cc}
	buf := make([]byte, 64)
	const n = 200
	for range n {
		if _, err := cl.Write([]byte("ping")); err != nil {
			t.Fatal(err)
		}
		c.SetReadDeadline(time.Now().Add(60 * time.Second))
		if _, err := c.Read(buf); err != nil {
			t.Fatal(err)
		}
		c.SetReadDeadline(time.Now().Add(5 * time.Second))
		c.SetWriteDeadline(time.Now().Add(5 * time.Second))
		if _, err := c.Write([]byte("pong")); err != nil {
			t.Fatal(err)
		}
		if _, err := cl.Read(buf); err != nil {
			t.Fatal(err)
		}
	}
	if cc.reads > 4 || cc.writes > 4 {
		t.Errorf("%d requests armed the read deadline %d times and the write deadline %d times, want a few", n, cc.reads, cc.writes)
	}
}

// A deadline still bounds the Read that waits: within its duration and
// 1/16 more.
func TestDeadlineBoundsWaitingRead(t *testing.T) {
	s, _ := loopbackPair(t)
	c := &Conn{Conn: s}
	c.SetReadDeadline(time.Now().Add(time.Hour)) // replaced before any read
	const d = 400 * time.Millisecond
	start := time.Now()
	c.SetReadDeadline(start.Add(d))
	_, err := c.Read(make([]byte, 8))
	took := time.Since(start)
	if !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("read: %v, want a deadline error", err)
	}
	if took < d || took > d+d/16+300*time.Millisecond {
		t.Errorf("read timed out after %v, want between %v and %v (plus scheduling)", took, d, d+d/16)
	}
}

// A past deadline interrupts a Read already waiting on another goroutine.
func TestPastDeadlineInterrupts(t *testing.T) {
	s, _ := loopbackPair(t)
	c := &Conn{Conn: s}
	done := make(chan error, 1)
	go func() {
		_, err := c.Read(make([]byte, 8))
		done <- err
	}()
	time.Sleep(50 * time.Millisecond)
	c.SetReadDeadline(time.Now().Add(-time.Second))
	select {
	case err := <-done:
		if !errors.Is(err, os.ErrDeadlineExceeded) {
			t.Fatalf("read: %v, want a deadline error", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("a past deadline did not interrupt the waiting read")
	}
}

// Rounding: never earlier than asked, at most 1/16 of the time left later.
func TestDeadlineRounding(t *testing.T) {
	for _, left := range []time.Duration{time.Millisecond, 500 * time.Millisecond, 5 * time.Second, time.Minute} {
		var d deadline
		at := time.Now().Add(left)
		d.ask(at)
		got := time.Unix(0, d.want.Load())
		if got.Before(at) || got.Sub(at) > left/16 {
			t.Errorf("deadline %v ahead rounded to %v later, want within [0, %v]", left, got.Sub(at), left/16)
		}
	}
	var d deadline
	d.ask(time.Time{})
	if d.want.Load() != d.set.Load() {
		t.Errorf("no deadline asked of a fresh connection, yet one is pending: %d", d.want.Load())
	}
}
