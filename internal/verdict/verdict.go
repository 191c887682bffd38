// Package verdict turns an engine verdict into the parts of an HTTP answer
// that every way into jwtgate shares: the verify listener, the Envoy
// ext_authz gRPC service and the in-process middleware. It holds the one
// table of 401 bodies and WWW-Authenticate values, the identity header
// names, and the strict parsing of an Authorization value, so that all of
// them answer byte for byte alike.
//
// Everything here is prebuilt or works on the caller's bytes: nothing
// allocates, so the server's 0-alloc hot path can use it.
package verdict

import (
	"strconv"

	"github.com/jwtgate/jwtgate/engine"
)

// Identity headers set on an allowed request.
const (
	HeaderProject = "X-Jwt-Project"
	HeaderKID     = "X-Jwt-Kid"
	HeaderSubject = "X-Jwt-Subject"
	// HeaderWWWAuthenticate carries the RFC 6750 challenge of a 401.
	HeaderWWWAuthenticate = "WWW-Authenticate"
	// ContentTypeJSON is the Content-Type of every verdict body.
	ContentTypeJSON = "application/json"
)

// UnavailableBody is the 503 body when the key store cannot be reached (or
// the node's view of it is too stale): not a verdict on the token.
var UnavailableBody = []byte(`{"valid":false,"error":"unavailable","message":"the key store is unavailable; try again shortly"}`)

// Per-code 401 bodies and WWW-Authenticate values, built once.
var (
	failBody [32][]byte
	failWWW  [32][]byte
)

func init() {
	for _, c := range engine.Codes() {
		failBody[c] = body(c, c.Message())
		if c == engine.CodeMissingToken {
			failWWW[c] = []byte(`Bearer realm="jwtgate"`)
		} else {
			failWWW[c] = []byte(`Bearer error="invalid_token", error_description="` + c.String() + `"`)
		}
	}
}

// Body returns the 401 JSON body for code c:
// {"valid":false,"error":"<code>","message":"<sentence>"}. The slice is
// shared: do not modify it.
func Body(c engine.Code) []byte { return failBody[c&31] }

// Bodies holds the 401 bodies of one Verifier: the per-code bodies of
// Body, except that messages name this Verifier's limits (ttl_exceeded its
// max TTL, token_too_large its size limit), plus one body per error with
// a detail (which claim is missing or of the wrong type). Built once, so
// that answering with them allocates nothing. The error codes and the
// WWW-Authenticate values are exactly those of Body and WWWAuthenticate.
type Bodies struct {
	code   [32][]byte
	detail map[*engine.Error][]byte
}

// NewBodies builds the bodies of v's verdicts.
func NewBodies(v *engine.Verifier) *Bodies {
	b := &Bodies{detail: map[*engine.Error][]byte{}}
	b.code = failBody
	b.code[engine.CodeTTLExceeded] = body(engine.CodeTTLExceeded,
		"the token's lifetime (exp - iat) is longer than this server's maximum of "+v.MaxTTL().String()+" (--max-ttl)")
	b.code[engine.CodeTokenTooLarge] = body(engine.CodeTokenTooLarge,
		"the Authorization value is larger than this server's limit of "+strconv.Itoa(v.MaxTokenBytes())+" bytes (--max-token-bytes)")
	for _, e := range v.DetailedErrors() {
		b.detail[e] = body(e.Code, e.Message())
	}
	return b
}

func body(c engine.Code, msg string) []byte {
	return []byte(`{"valid":false,"error":"` + c.String() + `","message":` + strconv.Quote(msg) + `}`)
}

// For returns the 401 body for a verdict: code, and the error the
// Verifier returned (nil when the request carried no usable token).
func (b *Bodies) For(code engine.Code, err error) []byte {
	if e, ok := err.(*engine.Error); ok && e.Detail != engine.DetailNone {
		if body, ok := b.detail[e]; ok {
			return body
		}
	}
	return b.code[code&31]
}

// WWWAuthenticate returns the WWW-Authenticate value of a 401 for code c:
// `Bearer realm="jwtgate"` when no token was presented, else
// `Bearer error="invalid_token", error_description="<code>"`. The slice is
// shared: do not modify it.
func WWWAuthenticate(c engine.Code) []byte { return failWWW[c&31] }

var bearerPrefix = []byte("bearer ")

// BearerToken extracts the token from one Authorization header value: the
// scheme "Bearer" (any case), one space, then the token. It returns the
// code to answer with when there is no usable token: missing_token for an
// empty value or a bare "Bearer", token_too_large over maxBytes, malformed
// for any other scheme or shape. The token aliases v.
func BearerToken(v []byte, maxBytes int) ([]byte, engine.Code) {
	if len(v) == 0 {
		return nil, engine.CodeMissingToken
	}
	if len(v) > maxBytes {
		return nil, engine.CodeTokenTooLarge
	}
	if len(v) < len(bearerPrefix) {
		if len(v) == len(bearerPrefix)-1 && asciiEqualFold(v, bearerPrefix[:len(bearerPrefix)-1]) {
			return nil, engine.CodeMissingToken // "Bearer" and nothing
		}
		return nil, engine.CodeMalformed
	}
	if !asciiEqualFold(v[:len(bearerPrefix)], bearerPrefix) {
		return nil, engine.CodeMalformed
	}
	tok := v[len(bearerPrefix):]
	if len(tok) == 0 {
		return nil, engine.CodeMissingToken
	}
	return tok, engine.CodeOK
}

// asciiEqualFold compares b to lower (already lower-case ASCII) ignoring
// ASCII case.
func asciiEqualFold(b, lower []byte) bool {
	if len(b) != len(lower) {
		return false
	}
	for i, c := range b {
		if c >= 'A' && c <= 'Z' {
			c += 'a' - 'A'
		}
		if c != lower[i] {
			return false
		}
	}
	return true
}

// ClaimHeaderValue returns the header value for a mapped claim: a string
// claim's unescaped value, or a number/bool's JSON text; objects, arrays,
// null and values unsafe in a header are skipped.
func ClaimHeaderValue(c *engine.Claims, name string) ([]byte, bool) {
	raw, ok := c.Raw(name)
	if !ok || len(raw) == 0 {
		return nil, false
	}
	if v, ok := c.String(name); ok {
		if len(v) == 0 || !HeaderSafe(v) {
			return nil, false
		}
		return v, true
	}
	switch raw[0] {
	case '{', '[', 'n':
		return nil, false
	}
	return raw, HeaderSafe(raw)
}

// HeaderSafe reports whether b can go in a header value unchanged: no
// control characters (CR, LF, NUL...) and no DEL.
func HeaderSafe(b []byte) bool {
	for _, c := range b {
		if c < 0x20 && c != '\t' || c == 0x7f {
			return false
		}
	}
	return true
}

// ValidHeaderName reports whether h is usable as a mapped claim header
// name: 1 to 128 of A-Z a-z 0-9 - _.
func ValidHeaderName(h string) bool {
	if h == "" || len(h) > 128 {
		return false
	}
	for i := 0; i < len(h); i++ {
		c := h[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
			return false
		}
	}
	return true
}
