package server

import (
	"io"
	"net"
	"sync/atomic"
	"time"

	"github.com/jwtgate/jwtgate/internal/deadline"
)

// Lingering close. When fasthttp refuses a request it could not read (a
// body over the limit: 413; headers over the limit: 431; a timeout), it
// writes the answer and closes the connection while the client may still
// be sending. Closing a socket with unread input makes the kernel send a
// reset, and a client that is still writing (Go's net/http does, for a
// body) sees "connection reset by peer" instead of the answer. So, as Go's
// net/http server does, such a connection first shuts down its write side
// (the answer is already flushed, the client gets a FIN after it) and
// discards what the client still sends, for a bounded time and amount,
// before closing: a request of up to about 1 MiB reads its answer.
const (
	lingerTime  = 500 * time.Millisecond
	lingerBytes = 1 << 20
)

// lingerListener hands out lingerConns.
type lingerListener struct{ net.Listener }

func (l lingerListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return &lingerConn{Conn: deadline.Conn{Conn: c}}, nil
}

// lingerConn is a connection whose Close lingers once markLinger was called.
type lingerConn struct {
	deadline.Conn // fewer timer updates per request, the same timeouts
	linger        atomic.Bool
}

// markLinger makes the close of c (the connection of an answer to an
// unreadable request) linger; c may be a wrapper with NetConn (TLS).
func markLinger(c net.Conn) {
	for c != nil {
		if lc, ok := c.(*lingerConn); ok {
			lc.linger.Store(true)
			return
		}
		nc, ok := c.(interface{ NetConn() net.Conn })
		if !ok {
			return
		}
		c = nc.NetConn()
	}
}

func (c *lingerConn) Close() error {
	if c.linger.Load() {
		if cw, ok := c.Conn.Conn.(interface{ CloseWrite() error }); ok && cw.CloseWrite() == nil {
			_ = c.Conn.Conn.SetReadDeadline(time.Now().Add(lingerTime))
			_, _ = io.CopyN(io.Discard, c.Conn.Conn, lingerBytes)
		}
	}
	return c.Conn.Conn.Close()
}
