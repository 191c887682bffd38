package loadgen

import "bytes"

// Unknown is the verdict of a response that is neither a 200 nor a 401
// carrying a known error code.
const Unknown Class = 255

var (
	descKey  = []byte(`error_description="`)
	errorKey = []byte(`"error":"`)
)

// Verdict reads the verdict of a jwtgate response: Valid for a 200; for a
// 401, the error code from WWW-Authenticate's error_description or else the
// body's "error" member (found by a byte search, not a JSON parse: this runs
// for every response); Unknown for anything else.
func Verdict(status int, wwwAuthenticate, body []byte) Class {
	switch status {
	case 200:
		return Valid
	case 401:
		if c, ok := quoted(wwwAuthenticate, descKey); ok {
			return c
		}
		if c, ok := quoted(body, errorKey); ok {
			return c
		}
	}
	return Unknown
}

func quoted(b, key []byte) (Class, bool) {
	i := bytes.Index(b, key)
	if i < 0 {
		return Unknown, false
	}
	b = b[i+len(key):]
	j := bytes.IndexByte(b, '"')
	if j < 0 {
		return Unknown, false
	}
	c, ok := classOfBytes(b[:j])
	if !ok || c == Valid {
		return Unknown, false
	}
	return c, true
}

// Check reports whether a response matches the expected class: 200 for
// Valid, else 401 with exactly the expected code. It returns the verdict
// read from the response.
func Check(expect Class, status int, wwwAuthenticate, body []byte) (Class, bool) {
	got := Verdict(status, wwwAuthenticate, body)
	return got, got == expect && got != Unknown
}
