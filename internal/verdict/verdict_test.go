package verdict

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/jwtgate/jwtgate/engine"
)

func TestBearerToken(t *testing.T) {
	for _, tc := range []struct {
		in, tok string
		code    engine.Code
		max     int
	}{
		{"", "", engine.CodeMissingToken, 100},
		{"Bearer", "", engine.CodeMissingToken, 100},
		{"bEaReR", "", engine.CodeMissingToken, 100},
		{"Bearer ", "", engine.CodeMissingToken, 100},
		{"Bearer a.b.c", "a.b.c", engine.CodeOK, 100},
		{"bearer a.b.c", "a.b.c", engine.CodeOK, 100},
		{"Bearer  a.b.c", " a.b.c", engine.CodeOK, 100}, // the engine refuses the space
		{"Basic a.b.c", "", engine.CodeMalformed, 100},
		{"Bear", "", engine.CodeMalformed, 100},
		{"Bearer\ta.b.c", "", engine.CodeMalformed, 100},
		{"Bearer a.b.c", "", engine.CodeTokenTooLarge, 11},
	} {
		tok, code := BearerToken([]byte(tc.in), tc.max)
		if string(tok) != tc.tok || code != tc.code {
			t.Errorf("BearerToken(%q, %d) = %q, %v; want %q, %v", tc.in, tc.max, tok, code, tc.tok, tc.code)
		}
	}
}

// Every code has a JSON body naming it and a challenge; no token, no
// error attribute.
func TestBodiesAndChallenges(t *testing.T) {
	for _, c := range engine.Codes() {
		var m map[string]any
		if err := json.Unmarshal(Body(c), &m); err != nil || m["valid"] != false || m["error"] != c.String() || m["message"] != c.Message() {
			t.Errorf("%s: body %s (%v)", c, Body(c), err)
		}
		w := string(WWWAuthenticate(c))
		if c == engine.CodeMissingToken {
			if w != `Bearer realm="jwtgate"` {
				t.Errorf("%s: %s", c, w)
			}
		} else if w != `Bearer error="invalid_token", error_description="`+c.String()+`"` {
			t.Errorf("%s: %s", c, w)
		}
	}
	if !strings.Contains(string(UnavailableBody), `"error":"unavailable"`) {
		t.Error(string(UnavailableBody))
	}
}

func TestHeaderSafeAndNames(t *testing.T) {
	if HeaderSafe([]byte("a\r\nb")) || HeaderSafe([]byte{0x7f}) || !HeaderSafe([]byte("a\tb é")) {
		t.Error("HeaderSafe")
	}
	if !ValidHeaderName("X-Group_Ref1") || ValidHeaderName("") || ValidHeaderName("X Group") || ValidHeaderName(strings.Repeat("a", 129)) {
		t.Error("ValidHeaderName")
	}
}
