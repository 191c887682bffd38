package engine

import (
	"math/big"
	"math/rand/v2"
	"strconv"
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
		// Above 2^53 with a fraction or exponent: out of range like the
		// integer form, though a float64 rounds them to 2^53.
		"9007199254740993.0":                     {0, 0, 0},
		"9007199254740992.5":                     {0, 0, 0},
		"9007199254740992.0":                     {1 << 53, 1 << 53, 1},
		"9.007199254740993e15":                   {0, 0, 0},
		"900719925474099.3e1":                    {0, 0, 0},
		"9007199254740992e0":                     {1 << 53, 1 << 53, 1},
		"0.5":                                    {0, 1, 1},
		"0.0":                                    {0, 0, 1},
		"0e-5":                                   {0, 0, 1},
		"1E-1000000000000":                       {0, 1, 1},
		"1800000000.000000000000000000000000001": {1800000000, 1800000001, 1},
		"180000000000000000000000000e-17":        {1800000000, 1800000000, 1},
	} {
		doc := []byte(in)
		f, c, ok := numericDate(doc, member{valStart: 0, valEnd: int32(len(doc)), kind: kindNumber})
		if ok != (want[2] == 1) || (ok && (f != want[0] || c != want[1])) {
			t.Errorf("numericDate(%s) = %d %d %v, want %v", in, f, c, ok, want)
		}
	}
}

// TestNumericDateExact compares numericDate with exact rational arithmetic
// on generated JSON numbers around 2^53 and around ordinary dates.
func TestNumericDateExact(t *testing.T) {
	rnd := rand.New(rand.NewPCG(1, 2))
	limit := new(big.Rat).SetInt64(1 << 53)
	bases := []string{"9007199254740992", "9007199254740993", "9007199254740991", "1800000000", "0", "1"}
	for range 20000 {
		s := bases[rnd.IntN(len(bases))]
		if rnd.IntN(2) == 0 { // move the decimal point and compensate with an exponent
			k := rnd.IntN(len(s) + 1)
			s = s[:k] + "." + s[k:]
			if s[0] == '.' {
				s = "0" + s
			}
			if s[len(s)-1] == '.' {
				s += "0"
			}
			if e := len(s) - 1 - k - 1; e != 0 && rnd.IntN(3) > 0 {
				s += "e" + strconv.Itoa(e)
			}
		}
		if rnd.IntN(2) == 0 {
			s += strings.Repeat("0", rnd.IntN(5))
			if !strings.ContainsAny(s, ".e") {
				s += ".0"
			}
		}
		if rnd.IntN(3) == 0 && !strings.Contains(s, "e") {
			if !strings.Contains(s, ".") {
				s += "."
			}
			s += strings.Repeat("0", rnd.IntN(20)) + strconv.Itoa(rnd.IntN(10))
		}
		r, ok := new(big.Rat).SetString(s)
		if !ok {
			t.Fatalf("bad generated number %q", s)
		}
		doc := []byte(s)
		f, c, got := numericDate(doc, member{valStart: 0, valEnd: int32(len(doc)), kind: kindNumber})
		want := r.Sign() >= 0 && r.Cmp(limit) <= 0
		if got != want {
			t.Fatalf("numericDate(%s) ok=%v, want %v", s, got, want)
		}
		if !got {
			continue
		}
		fl := new(big.Int).Quo(r.Num(), r.Denom()) // r >= 0: truncation is the floor
		ce := new(big.Int).Set(fl)
		if !r.IsInt() {
			ce.Add(ce, big.NewInt(1))
		}
		if f != fl.Int64() || c != ce.Int64() {
			t.Fatalf("numericDate(%s) = %d %d, want %v %v", s, f, c, fl, ce)
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
