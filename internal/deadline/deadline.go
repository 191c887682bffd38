// Package deadline coalesces a connection's deadline updates.
//
// fasthttp arms a socket's deadlines three times per keep-alive request on
// the server (the idle deadline before waiting for the request, the read
// deadline once its first byte is in, the write deadline before the
// answer) and twice per request on the client (write, then read). Each is a
// runtime timer update: about 8 % of a cached verify's CPU in the server
// benchmark. Conn keeps the same protections with almost none of them:
//
//   - A deadline is handed to the socket only when the next Read (or Write)
//     needs it, so the read deadline of a request whose bytes all came with
//     its first read is never armed, and the idle deadline that follows
//     replaces it unseen. Read deadlines matter only to a read that waits,
//     and every wait goes through Read.
//   - A future deadline is rounded up to a grid of at most 1/16 of the time
//     left (a power of two of nanoseconds), so the deadline of the next
//     request on a busy connection is usually the one the socket already
//     has. A timeout thus fires between its configured duration and 1/16
//     later: a 5 s read timeout cuts a slow client off within 5.32 s.
//   - A deadline already past, which is how a caller interrupts a waiting
//     Read or Write, reaches the socket at once.
//
// The fields are atomics: fasthttp sets deadlines on the connection's own
// goroutine, but TLS may set and use the write deadline from the goroutine
// that closes an idle connection.
package deadline

import (
	"math/bits"
	"net"
	"sync/atomic"
	"time"
)

// Deadline coalescing. fasthttp arms the socket's deadlines three times per
// keep-alive request: the idle deadline before waiting for the request, the
// read deadline once its first byte is in, the write deadline before the
// answer. Each is a runtime timer update (about 8 % of a cached verify's
// CPU in the server benchmark). lingerConn keeps the same protections with
// almost none of those updates:
//
//   - A deadline is handed to the socket only when the next Read (or Write)
//     needs it, so the read deadline of a request whose bytes all came with
//     its first read is never armed, and the idle deadline that follows
//     replaces it unseen. Read deadlines matter only to a read that waits,
//     and every wait goes through Read.
//   - A future deadline is rounded up to a grid of at most 1/16 of the time
//     left (a power of two of nanoseconds), so the deadline of the next
//     request on a busy connection is usually the one the socket already
//     has. A timeout thus fires between its configured duration and 1/16
//     later: a 5 s read timeout cuts a slow client off within 5.3 s.
//   - A deadline already past, which is how a caller interrupts a waiting
//     Read or Write, reaches the socket at once.
//
// The fields are atomics: fasthttp sets deadlines on the connection's own
// goroutine, but TLS may set and use the write deadline from the goroutine
// that closes an idle connection.

// Conn wraps a connection so that its deadlines reach the socket only when
// a Read or Write needs them (see the package comment). Use it as a
// *Conn; the zero deadline state is the socket's (none).
type Conn struct {
	net.Conn
	rd, wd deadline
}

// deadline is one direction's deadline, in Unix nanoseconds (0: none).
type deadline struct {
	want atomic.Int64 // what the server asked for, rounded up
	set  atomic.Int64 // what the socket has
}

// ask records t as the wanted deadline; it reports whether t is already
// past (the caller then applies it at once).
func (d *deadline) ask(t time.Time) (now bool) {
	if t.IsZero() {
		d.want.Store(0)
		return false
	}
	left := time.Until(t)
	if left <= 0 {
		n := t.UnixNano()
		d.want.Store(n)
		d.set.Store(n)
		return true
	}
	g := int64(left / 16)
	if g < 1 {
		g = 1
	}
	g = 1 << (bits.Len64(uint64(g)) - 1) // a power of two, so that nearby deadlines share the grid
	n := t.UnixNano()
	if r := n % g; r != 0 {
		n += g - r
	}
	d.want.Store(n)
	return false
}

// pending returns the wanted deadline and whether the socket lacks it.
func (d *deadline) pending() (time.Time, bool) {
	w := d.want.Load()
	if w == d.set.Load() {
		return time.Time{}, false
	}
	d.set.Store(w)
	if w == 0 {
		return time.Time{}, true
	}
	return time.Unix(0, w), true
}

func (c *Conn) SetReadDeadline(t time.Time) error {
	if c.rd.ask(t) {
		return c.Conn.SetReadDeadline(t)
	}
	return nil
}

func (c *Conn) SetWriteDeadline(t time.Time) error {
	if c.wd.ask(t) {
		return c.Conn.SetWriteDeadline(t)
	}
	return nil
}

func (c *Conn) SetDeadline(t time.Time) error {
	r, w := c.rd.ask(t), c.wd.ask(t)
	if r || w {
		return c.Conn.SetDeadline(t)
	}
	return nil
}

func (c *Conn) Read(p []byte) (int, error) {
	if t, ok := c.rd.pending(); ok {
		if err := c.Conn.SetReadDeadline(t); err != nil {
			return 0, err
		}
	}
	return c.Conn.Read(p)
}

func (c *Conn) Write(p []byte) (int, error) {
	if t, ok := c.wd.pending(); ok {
		if err := c.Conn.SetWriteDeadline(t); err != nil {
			return 0, err
		}
	}
	return c.Conn.Write(p)
}
