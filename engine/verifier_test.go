package engine_test

import (
	"context"
	"crypto/rsa"
	"encoding/json"
	"errors"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jwtgate/jwtgate/engine"
	et "github.com/jwtgate/jwtgate/engine/enginetest"
)

var testNow = time.Unix(1_800_000_000, 0)

type fixture struct {
	v     *engine.Verifier
	store *engine.MemoryStore
	priv  *rsa.PrivateKey // project "myapp", kid "k1", active
	other *rsa.PrivateKey // project "other", kid "k2", active
	off   *rsa.PrivateKey // project "myapp", kid "k3", inactive
}

func newFixture(t testing.TB, opts ...engine.Option) *fixture {
	t.Helper()
	f := &fixture{store: engine.NewMemoryStore(), priv: et.Key("rsa2048-a"), other: et.Key("rsa2048-b"), off: et.Key("rsa2048-c")}
	opts = append([]engine.Option{engine.WithClock(func() time.Time { return testNow })}, opts...)
	v, err := engine.New(f.store, opts...)
	if err != nil {
		t.Fatal(err)
	}
	f.v = v
	ctx := context.Background()
	for _, k := range []struct {
		kid, project string
		priv         *rsa.PrivateKey
	}{{"k1", "myapp", f.priv}, {"k2", "other", f.other}, {"k3", "myapp", f.off}} {
		if _, err := v.AddKey(ctx, &engine.Key{KID: k.kid, Project: k.project, Public: &k.priv.PublicKey, Label: "test"}); err != nil {
			t.Fatal(err)
		}
	}
	st := engine.StatusInactive
	if _, err := v.UpdateKey(ctx, "myapp", "k3", engine.KeyUpdate{Status: &st}); err != nil {
		t.Fatal(err)
	}
	return f
}

func validClaims() map[string]any {
	return map[string]any{"aud": []string{"myapp"}, "iat": testNow.Unix(), "exp": testNow.Unix() + 300, "sub": "user-1"}
}

func with(m map[string]any, kv ...any) map[string]any {
	out := map[string]any{}
	for k, v := range m {
		out[k] = v
	}
	for i := 0; i < len(kv); i += 2 {
		if kv[i+1] == nil {
			delete(out, kv[i].(string))
			continue
		}
		out[kv[i].(string)] = kv[i+1]
	}
	return out
}

func TestVerifyErrorCodes(t *testing.T) {
	f := newFixture(t, engine.WithRequiredClaims("groupRef"))
	base := with(validClaims(), "groupRef", "g1")
	hdr := et.Header("k1")
	sign := func(h, p any) string { return et.SignRS256(f.priv, h, p) }
	now := testNow.Unix()
	good := sign(hdr, base)
	tamper := good[:len(good)-2] + "AA"
	if tamper == good {
		tamper = good[:len(good)-2] + "BA"
	}
	tests := []struct {
		name    string
		token   string
		want    error
		message string // the error's Message, when it says more than the code's
	}{
		{name: "valid", token: good, want: nil},
		{name: "missing_token", token: "", want: engine.ErrMissingToken},
		{name: "token_too_large", token: strings.Repeat("a", 9000), want: engine.ErrTokenTooLarge},
		{name: "malformed/two parts", token: "abc.def", want: engine.ErrMalformed},
		{name: "malformed/four parts", token: good + ".x", want: engine.ErrMalformed},
		{name: "malformed/padding", token: strings.Replace(good, ".", "=.", 1), want: engine.ErrMalformed},
		{name: "malformed/crlf", token: good[:10] + "\r\n" + good[10:], want: engine.ErrMalformed},
		{name: "malformed/json", token: et.B64([]byte(`{"alg":"RS256"`)) + "." + et.B64(et.MustJSON(base)) + ".AAAA", want: engine.ErrMalformed},
		{name: "malformed/duplicate", token: sign([]byte(`{"alg":"RS256","kid":"k1","al\u0067":"RS256"}`), base), want: engine.ErrMalformed},
		{name: "malformed/exp string", token: sign(hdr, with(base, "exp", "1800000300")), want: engine.ErrMalformed},
		{name: "malformed/kid number", token: sign(map[string]any{"alg": "RS256", "kid": 1}, base), want: engine.ErrMalformed},
		{name: "unsupported_algorithm/none", token: et.Unsigned(map[string]any{"alg": "none", "kid": "k1"}, base), want: engine.ErrMalformed},
		{name: "unsupported_algorithm/none signed", token: et.B64([]byte(`{"alg":"none","kid":"k1"}`)) + "." + et.B64(et.MustJSON(base)) + ".AAAA", want: engine.ErrUnsupportedAlgorithm},
		{name: "unsupported_algorithm/HS256", token: et.SignHS256(et.PublicPEM(&f.priv.PublicKey), map[string]any{"alg": "HS256", "kid": "k1"}, base), want: engine.ErrUnsupportedAlgorithm},
		{name: "unsupported_algorithm/RS512", token: sign(map[string]any{"alg": "RS512", "kid": "k1"}, base), want: engine.ErrUnsupportedAlgorithm},
		{name: "unsupported_algorithm/missing", token: sign(map[string]any{"kid": "k1"}, base), want: engine.ErrUnsupportedAlgorithm},
		{name: "unsupported_header/crit", token: sign(map[string]any{"alg": "RS256", "kid": "k1", "crit": []string{"exp"}}, base), want: engine.ErrUnsupportedHeader},
		{name: "unsupported_header/typ", token: sign(map[string]any{"alg": "RS256", "kid": "k1", "typ": "at+jwt"}, base), want: engine.ErrUnsupportedHeader},
		{name: "unsupported_header/cty", token: sign(map[string]any{"alg": "RS256", "kid": "k1", "cty": "JWT"}, base), want: engine.ErrUnsupportedHeader},
		{name: "missing_kid", token: sign(map[string]any{"alg": "RS256"}, base), want: engine.ErrMissingKID},
		{name: "unknown_kid", token: sign(et.Header("nope"), base), want: engine.ErrUnknownKID},
		{name: "unknown_kid/bad pattern", token: sign(et.Header("a b"), base), want: engine.ErrUnknownKID},
		{name: "key_inactive", token: et.SignRS256(f.off, et.Header("k3"), base), want: engine.ErrKeyInactive},
		{name: "missing_claim/exp", token: sign(hdr, with(base, "exp", nil)), want: engine.ErrMissingClaim, message: "the token has no exp claim (exp and iat are required)"},
		{name: "missing_claim/iat", token: sign(hdr, with(base, "iat", nil)), want: engine.ErrMissingClaim, message: "the token has no iat claim (exp and iat are required)"},
		{name: "missing_claim/required", token: sign(hdr, with(base, "groupRef", nil)), want: engine.ErrMissingClaim, message: "the token has no \"groupRef\" claim, which this server requires"},
		{name: "missing_claim/required empty", token: sign(hdr, with(base, "groupRef", "")), want: engine.ErrMissingClaim, message: "the token's \"groupRef\" claim must be a non-empty string (this server requires it)"},
		{name: "expired", token: sign(hdr, with(base, "iat", now-400, "exp", now-30)), want: engine.ErrExpired},
		{name: "not_yet_valid", token: sign(hdr, with(base, "nbf", now+31)), want: engine.ErrNotYetValid},
		{name: "issued_in_future", token: sign(hdr, with(base, "iat", now+31, "exp", now+300)), want: engine.ErrIssuedInFuture},
		{name: "ttl_exceeded", token: sign(hdr, with(base, "exp", now+601)), want: engine.ErrTTLExceeded},
		{name: "audience_mismatch", token: sign(hdr, with(base, "aud", "other")), want: engine.ErrAudienceMismatch},
		{name: "audience_mismatch/missing", token: sign(hdr, with(base, "aud", nil)), want: engine.ErrAudienceMismatch},
		{name: "invalid_signature", token: tamper, want: engine.ErrInvalidSignature},
		{name: "invalid_signature/other key", token: et.SignRS256(f.other, hdr, base), want: engine.ErrInvalidSignature},
		{name: "invalid_signature/short", token: good[:strings.LastIndexByte(good, '.')+1] + "AAAA", want: engine.ErrInvalidSignature},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c, err := f.v.Verify([]byte(tc.token))
			if tc.want == nil {
				if err != nil {
					t.Fatalf("Verify: %v", err)
				}
				if c.Project != "myapp" || c.KID != "k1" || string(c.Subject()) != "user-1" || c.Expires != now+300 {
					t.Fatalf("claims = %+v sub=%q", c, c.Subject())
				}
				var m map[string]any
				if err := json.Unmarshal(c.Payload(), &m); err != nil || m["groupRef"] != "g1" {
					t.Fatalf("payload %s: %v", c.Payload(), err)
				}
				return
			}
			if !errors.Is(err, tc.want) {
				t.Fatalf("err = %v, want %v", err, tc.want)
			}
			var ee *engine.Error
			if !errors.As(err, &ee) || ee.Code != engine.CodeOf(tc.want) {
				t.Fatalf("errors.As code mismatch: %v", err)
			}
			if tc.message != "" && ee.Message() != tc.message {
				t.Fatalf("message %q, want %q", ee.Message(), tc.message)
			}
		})
	}
}

// TestNumericDateAbove2p53Signed: a NumericDate above 2^53 is malformed
// whether written as an integer, with a fraction or with an exponent (a
// float64 rounds 9007199254740993.0 to 2^53, which is in range), in exp,
// iat and nbf of properly signed tokens; 2^53 itself and ordinary fractions
// still parse.
func TestNumericDateAbove2p53Signed(t *testing.T) {
	f := newFixture(t)
	now := testNow.Unix()
	hdr := et.Header("k1")
	payload := func(exp, iat, nbf string) []byte {
		p := `{"aud":"myapp","sub":"user-1","exp":` + exp + `,"iat":` + iat
		if nbf != "" {
			p += `,"nbf":` + nbf
		}
		return []byte(p + "}")
	}
	exp, iat := strconv.FormatInt(now+300, 10), strconv.FormatInt(now, 10)
	for _, big := range []string{"9007199254740993", "9007199254740993.0", "9007199254740992.5", "9.007199254740993e15", "90071992547409930e-1"} {
		for name, p := range map[string][]byte{
			"exp": payload(big, iat, ""),
			"iat": payload(exp, big, ""),
			"nbf": payload(exp, iat, big),
		} {
			tok := et.SignRS256(f.priv, hdr, p)
			if _, err := f.v.Verify([]byte(tok)); !errors.Is(err, engine.ErrMalformed) {
				t.Errorf("%s = %s: %v, want malformed", name, big, err)
			}
		}
	}
	// In range: 2^53 (a rule other than the parser refuses it) and a
	// fractional exp, rounded down.
	tok := et.SignRS256(f.priv, hdr, payload(exp, iat, "9007199254740992.0"))
	if _, err := f.v.Verify([]byte(tok)); !errors.Is(err, engine.ErrNotYetValid) {
		t.Errorf("nbf = 2^53: %v, want not_yet_valid", err)
	}
	tok = et.SignRS256(f.priv, hdr, payload(exp+".75", iat+".25", ""))
	c, err := f.v.Verify([]byte(tok))
	if err != nil || c.Expires != now+300 || c.IssuedAt != now {
		t.Errorf("fractional dates: %v %+v", err, c)
	}
}

// TestFreshnessFence: past the bound a store set with SetFreshUntil, every
// verify (cached or not) answers ErrUnavailable, never a verdict; moving
// the bound forward or clearing it restores verdicts.
func TestFreshnessFence(t *testing.T) {
	f := newFixture(t)
	good := []byte(et.SignRS256(f.priv, et.Header("k1"), validClaims()))
	unknown := []byte(et.SignRS256(f.priv, et.Header("nope"), validClaims()))
	if _, err := f.v.Verify(good); err != nil { // cached from here on
		t.Fatal(err)
	}
	f.v.SetFreshUntil(testNow.Add(-time.Second))
	if !f.v.Stale() {
		t.Fatal("Stale() = false past the bound")
	}
	for name, tok := range map[string][]byte{"cached": good, "unknown kid": unknown} {
		if _, err := f.v.Verify(tok); !errors.Is(err, engine.ErrUnavailable) {
			t.Errorf("%s past the bound: %v, want ErrUnavailable", name, err)
		}
	}
	f.v.SetFreshUntil(testNow.Add(time.Second))
	if _, err := f.v.Verify(good); err != nil || f.v.Stale() {
		t.Errorf("within the bound: %v stale=%v", err, f.v.Stale())
	}
	if _, err := f.v.Verify(unknown); !errors.Is(err, engine.ErrUnknownKID) {
		t.Errorf("unknown kid within the bound: %v", err)
	}
	f.v.SetFreshUntil(time.Time{})
	if _, err := f.v.Verify(good); err != nil || f.v.Stale() {
		t.Errorf("no bound: %v stale=%v", err, f.v.Stale())
	}
}
