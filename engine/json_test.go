package engine

import (
	"strings"
	"testing"
)

func TestStrictJSON(t *testing.T) {
	deep := strings.Repeat("[", maxJSONDepth+1) + strings.Repeat("]", maxJSONDepth+1)
	tests := []struct {
		doc string
		ok  bool
	}{
		{`{}`, true},
		{` {"a":1} `, true},
		{`{"a":"\u00e9\ud83d\ude00","b":[1,2.5e3,-0,true,false,null,{"c":{}}]}`, true},
		{`{"a":1,"a":2}`, false},
		{`{"a":1,"\u0061":2}`, false},
		{`{"a":1,"A":2}`, true},
		{`{"x":{"a":1,"a":2}}`, false},
		{`{"x":[{"a":1},{"a":1}]}`, true},
		{`{"a":1}{}`, false},
		{`{"a":1}x`, false},
		{`[]`, false},
		{`{"a":01}`, false},
		{`{"a":1.}`, false},
		{`{"a":.5}`, false},
		{`{"a":+1}`, false},
		{`{"a":1e}`, false},
		{`{"a":"\ud800"}`, false},
		{`{"a":"\udc00\ud800"}`, false},
		{`{"a":"\x"}`, false},
		{"{\"a\":\"\x01\"}", false},
		{"{\"a\":\"\xff\"}", false},
		{`{"a":tru}`, false},
		{`{"a":1,}`, false},
		{`{"a" 1}`, false},
		{`{"a":` + deep + `}`, false},
		{`{"a":` + strings.Repeat("[", maxJSONDepth-2) + strings.Repeat("]", maxJSONDepth-2) + `}`, true},
	}
	var p jsonParser
	for _, tc := range tests {
		err := p.parse([]byte(tc.doc))
		if (err == nil) != tc.ok {
			t.Errorf("parse(%q) = %v, want ok=%v", tc.doc, err, tc.ok)
		}
	}
	// Many members: duplicates found after sorting as well.
	var b strings.Builder
	b.WriteString("{")
	for i := range 300 {
		if i > 0 {
			b.WriteString(",")
		}
		b.WriteString(`"k` + strings.Repeat("x", i%7) + string(rune('a'+i%26)) + `":1`)
	}
	b.WriteString("}")
	if err := p.parse([]byte(b.String())); err == nil {
		t.Error("duplicate among 300 members not found")
	}
}

func TestBase64Strict(t *testing.T) {
	for s, ok := range map[string]bool{"": true, "AA": true, "AB": false, "AAA": true, "AAB": false, "A": false, "AA==": false, "A\nA": false, "a-_0": true, "a+/0": false} {
		if isB64URL([]byte(s)) != ok {
			t.Errorf("isB64URL(%q) != %v", s, ok)
		}
	}
}

func TestNumericDate(t *testing.T) {
	for in, want := range map[string][3]int64{
		"0":                {0, 0, 1},
		"1800000000":       {1800000000, 1800000000, 1},
		"1800000000.5":     {1800000000, 1800000001, 1},
		"1.8e9":            {1800000000, 1800000000, 1},
		"9007199254740992": {1 << 53, 1 << 53, 1},
		"9007199254740993": {0, 0, 0},
		"-1":               {0, 0, 0},
		"1e400":            {0, 0, 0},
	} {
		doc := []byte(in)
		f, c, ok := numericDate(doc, member{valStart: 0, valEnd: int32(len(doc)), kind: kindNumber})
		if ok != (want[2] == 1) || (ok && (f != want[0] || c != want[1])) {
			t.Errorf("numericDate(%s) = %d %d %v, want %v", in, f, c, ok, want)
		}
	}
}

// TestB64DecodeMatchesStdlib: the fused decoder agrees with Go's strict
// decoder (after the alphabet check Go lacks) on every short input.
func TestB64DecodeMatchesStdlib(t *testing.T) {
	alpha := []byte("AQgw_-+/=\r\n.z9")
	var buf [8]byte
	var rec func(prefix []byte)
	rec = func(prefix []byte) {
		want, err := b64.DecodeString(string(prefix))
		wantOK := err == nil && isB64URL(prefix)
		n, ok := b64Decode(buf[:], prefix)
		if ok != wantOK || (ok && string(buf[:n]) != string(want)) {
			t.Fatalf("b64Decode(%q) = %q %v, want %q %v", prefix, buf[:n], ok, want, wantOK)
		}
		if len(prefix) == 5 {
			return
		}
		for _, c := range alpha {
			rec(append(prefix, c))
		}
	}
	rec(nil)
}
