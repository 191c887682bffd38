package engine_test

import (
	"crypto/rsa"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/jwtgate/jwtgate/engine"
	et "github.com/jwtgate/jwtgate/engine/enginetest"
)

// diffSetup is the fixture shared by the differential test and the fuzz
// target: the engine and the golang-jwt reference over the same keys.
func diffSetup(t testing.TB) (*fixture, *reference) {
	f := newFixture(t, engine.WithRequiredClaims("groupRef"), engine.WithTokenCacheSize(0))
	ref := &reference{
		keys: map[string]refKey{
			"k1": {&f.priv.PublicKey, "myapp", true},
			"k2": {&f.other.PublicKey, "other", true},
			"k3": {&f.off.PublicKey, "myapp", false},
		},
		now: testNow, leeway: 30 * time.Second, maxTTL: 600, required: []string{"groupRef"},
	}
	return f, ref
}

type tokenGen struct {
	rnd *rand.Rand
	f   *fixture
}

func (g *tokenGen) pick(xs ...any) any { return xs[g.rnd.IntN(len(xs))] }

// claimToken builds a token with random variations around every rule's
// boundary, re-signed so that the signature is valid for what it carries.
func (g *tokenGen) claimToken() string {
	now := testNow.Unix()
	hdr := map[string]any{"alg": "RS256", "kid": "k1", "typ": "JWT"}
	pl := map[string]any{"aud": []string{"myapp"}, "iat": now, "exp": now + 300, "sub": "u", "groupRef": "g"}
	priv := g.f.priv
	for n := g.rnd.IntN(3); n >= 0; n-- {
		switch g.rnd.IntN(16) {
		case 0:
			hdr["kid"] = g.pick("k1", "k2", "k3", "nope", "", 7)
		case 1:
			hdr["alg"] = g.pick("RS256", "RS384", "none", "HS256", "rs256", nil, 1)
		case 2:
			hdr["typ"] = g.pick("JWT", "jwt", "application/jwt", "at+jwt", 5)
		case 3:
			pl["exp"] = now + int64(g.pick(-31, -30, -29, 0, 1, 569, 570, 571, 630, 631).(int))
		case 4:
			pl["iat"] = now + int64(g.pick(-60, -1, 0, 29, 30, 31, 40).(int))
		case 5:
			pl["nbf"] = g.pick(now-1, now+29, now+30, now+31, now+100, "x")
		case 6:
			pl["aud"] = g.pick("myapp", "other", []string{"x", "myapp"}, []string{"other"}, []string{}, nil, 3, []any{"myapp", 1})
		case 7:
			delete(pl, g.pick("exp", "iat", "aud", "groupRef", "sub").(string))
		case 8:
			pl["groupRef"] = g.pick("", "g", 1, nil)
		case 9:
			pl["exp"] = g.pick("1800000000", true, nil, -1, 1e300, 1800000100.5)
		case 10:
			priv = g.pick(g.f.priv, g.f.other, g.f.off).(*rsa.PrivateKey)
		case 11:
			pl["sub"] = g.pick("s", 1, nil, []string{"a"})
		case 12:
			hdr["crit"] = []string{"exp"}
		case 13:
			hdr["cty"] = "JWT"
		case 14:
			hdr["jku"] = "https://attacker.example/jwks"
		case 15:
			pl["iat"] = g.pick(float64(now)-0.5, float64(now)+30.5, -5)
		}
	}
	switch hdr["alg"] {
	case "none":
		return et.SigningInput(hdr, pl) + "." + et.B64([]byte("x"))
	case "HS256":
		return et.SignHS256(et.PublicPEM(&g.f.priv.PublicKey), hdr, pl)
	}
	return et.SignRS256(priv, hdr, pl)
}

// mutate changes one byte of a token: a substitution, a deletion, an
// insertion, or a swap of two characters.
func (g *tokenGen) mutate(tok string) string {
	b := []byte(tok)
	i := g.rnd.IntN(len(b))
	const chars = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.=+/ \r\n\x00"
	switch g.rnd.IntN(4) {
	case 0:
		b[i] = chars[g.rnd.IntN(len(chars))]
	case 1:
		b = append(b[:i], b[i+1:]...)
	case 2:
		b = append(b[:i], append([]byte{chars[g.rnd.IntN(len(chars))]}, b[i:]...)...)
	default:
		j := g.rnd.IntN(len(b))
		b[i], b[j] = b[j], b[i]
	}
	return string(b)
}

// TestDifferentialGolangJWT checks thousands of tokens with both the engine
// and golang-jwt/jwt/v5 under the same rules: they must agree on accept or
// reject, except where jwtgate is deliberately stricter, and each such place
// is named (see stricterReason). The engine never accepts what the
// reference refuses.
func TestDifferentialGolangJWT(t *testing.T) {
	f, ref := diffSetup(t)
	g := &tokenGen{rnd: rand.New(rand.NewPCG(1, 2)), f: f}
	signed := 400
	if testing.Short() {
		signed = 100
	}
	var tokens []string
	for range signed {
		tokens = append(tokens, g.claimToken())
	}
	base := []string{}
	for _, tk := range tokens[:50] {
		base = append(base, tk)
	}
	base = append(base, et.SignRS256(f.priv, et.Header("k1"), with(validClaims(), "groupRef", "g")))
	for range 4000 {
		tokens = append(tokens, g.mutate(base[g.rnd.IntN(len(base))]))
	}
	// Hand-made cases for each named strictness.
	good := with(validClaims(), "groupRef", "g")
	tokens = append(tokens,
		et.SignRS256(f.priv, []byte(`{"alg":"RS256","kid":"k1","kid":"k1"}`), good),
		et.SignRS256(f.priv, et.Header("k1"), []byte(`{"aud":"myapp","iat":1800000000,"exp":1800000300,"groupRef":"g","exp":1800000300}`)),
		et.SignRS256(f.priv, et.Header("k1"), []byte(`{"aud":"myapp","exp":1800000300,"groupRef":"g"}`)),
	)
	c := new(engine.Claims)
	agree, accepted := 0, 0
	stricter := map[string]int{}
	var problems []string
	for _, tk := range tokens {
		eErr := f.v.VerifyInto([]byte(tk), c)
		rErr := ref.verify(tk)
		switch {
		case (eErr == nil) == (rErr == nil):
			agree++
			if eErr == nil {
				accepted++
			}
		case eErr == nil:
			problems = append(problems, fmt.Sprintf("engine ACCEPTS what golang-jwt refuses (%v): %q", rErr, tk))
		default:
			r := stricterReason(tk)
			if r == "" && !strings.Contains(tk, ".") {
				r = ""
			}
			if r == "" {
				// iat is required by docs/API.md; golang-jwt only checks it when present.
				var m map[string]any
				parts := strings.Split(tk, ".")
				if len(parts) == 3 {
					if b, err := engineB64(parts[1]); err == nil && json.Unmarshal(b, &m) == nil {
						if _, ok := m["iat"]; !ok {
							r = "missing iat"
						}
					}
				}
			}
			if r == "" {
				problems = append(problems, fmt.Sprintf("engine refuses (%v) what golang-jwt accepts, for no named reason: %q", eErr, tk))
				continue
			}
			stricter[r]++
		}
	}
	for _, p := range problems[:min(len(problems), 10)] {
		t.Error(p)
	}
	if accepted < 20 {
		t.Errorf("only %d tokens accepted by both: the generator does not exercise acceptance", accepted)
	}
	keys := make([]string, 0, len(stricter))
	for k := range stricter {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		t.Logf("deliberately stricter than golang-jwt: %-55s %d tokens", k, stricter[k])
	}
	for _, want := range []string{"duplicate member names", "missing iat"} {
		if stricter[want] == 0 {
			t.Errorf("no token exercised the named strictness %q", want)
		}
	}
	t.Logf("%d tokens: %d agree (%d accepted by both), %d deliberately stricter", len(tokens), agree, accepted, len(tokens)-agree)
}

func engineB64(s string) ([]byte, error) {
	return jsonB64.DecodeString(s)
}
