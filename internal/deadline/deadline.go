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
		// set is left alone: a Read or Write applying an older deadline
		// at this moment sees want move and applies this one after it.
		d.want.Store(t.UnixNano())
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

// unixTime is the deadline for want (0: none).
func unixTime(w int64) time.Time {
	if w == 0 {
		return time.Time{}
	}
	return time.Unix(0, w)
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

// Read hands the socket the wanted read deadline if it lacks it, until it
// has the latest (a past deadline set from another goroutine meanwhile is
// applied after the older one), then reads.
func (c *Conn) Read(p []byte) (int, error) {
	for w := c.rd.want.Load(); w != c.rd.set.Load(); w = c.rd.want.Load() {
		c.rd.set.Store(w)
		if err := c.Conn.SetReadDeadline(unixTime(w)); err != nil {
			return 0, err
		}
	}
	return c.Conn.Read(p)
}

// Write does for the write deadline what Read does for the read deadline.
func (c *Conn) Write(p []byte) (int, error) {
	for w := c.wd.want.Load(); w != c.wd.set.Load(); w = c.wd.want.Load() {
		c.wd.set.Store(w)
		if err := c.Conn.SetWriteDeadline(unixTime(w)); err != nil {
			return 0, err
		}
	}
	return c.Conn.Write(p)
}
