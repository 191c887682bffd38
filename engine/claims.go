package engine

import "sync"

// Claims is the identity a verified token carries. Its byte slices point
// into buffers the Claims owns: they stay valid until the Claims is passed
// to VerifyInto again, Reset, or released with ReleaseClaims. A Claims is
// not safe for concurrent use; reuse one per goroutine (or AcquireClaims).
type Claims struct {
	// Project is the project that owns the key (and is in aud).
	Project string
	// KID is the kid of the key that verified the token.
	KID string
	// Expires, IssuedAt and NotBefore are the NumericDate claims in Unix
	// seconds (fractions rounded down; NotBefore is 0 when absent).
	Expires   int64
	IssuedAt  int64
	NotBefore int64

	payload []byte   // the decoded payload JSON
	members []member // its top-level members
	subject []byte   // unescaped sub, nil when absent
	subBuf  []byte
}

// Reset clears c for reuse, keeping its buffers.
func (c *Claims) Reset() {
	c.Project, c.KID = "", ""
	c.Expires, c.IssuedAt, c.NotBefore = 0, 0, 0
	c.payload = c.payload[:0]
	c.members = c.members[:0]
	c.subject = nil
}

// Payload returns the token's payload: one strict JSON object.
func (c *Claims) Payload() []byte { return c.payload }

// Subject returns the unescaped sub claim, or nil when the token has none.
func (c *Claims) Subject() []byte { return c.subject }

// Raw returns the raw JSON value of the top-level claim name (a string
// without its quotes, still escaped), and whether the claim is present.
func (c *Claims) Raw(name string) ([]byte, bool) {
	m, ok := findMember(c.payload, c.members, name)
	if !ok {
		return nil, false
	}
	return c.payload[m.valStart:m.valEnd], true
}

// String returns the unescaped value of the top-level string claim name, or
// ok=false when it is absent or not a string. The result may alias c's
// buffers (valid until c is reused) or, for escaped values, be newly
// allocated.
func (c *Claims) String(name string) ([]byte, bool) {
	m, ok := findMember(c.payload, c.members, name)
	if !ok || m.kind != kindString {
		return nil, false
	}
	return stringValue(c.payload, m, nil), true
}

// Has reports whether the top-level claim name is present.
func (c *Claims) Has(name string) bool {
	_, ok := findMember(c.payload, c.members, name)
	return ok
}

// Names calls fn with each top-level claim name (raw, still escaped) in
// payload order.
func (c *Claims) Names(fn func(name []byte)) {
	for _, m := range c.members {
		fn(c.payload[m.nameStart:m.nameEnd])
	}
}

var claimsPool = sync.Pool{New: func() any { return new(Claims) }}

// AcquireClaims returns an empty Claims from a pool; give it back with
// ReleaseClaims when its values are no longer used.
func AcquireClaims() *Claims { return claimsPool.Get().(*Claims) }

// ReleaseClaims resets c and returns it to the pool. c and every slice it
// returned must not be used afterwards.
func ReleaseClaims(c *Claims) {
	if c == nil {
		return
	}
	c.Reset()
	if cap(c.payload) > 2*MaxTokenBytesLimit {
		return // don't keep outsized buffers
	}
	claimsPool.Put(c)
}
