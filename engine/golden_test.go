package engine_test

import (
	"errors"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/jwtgate/jwtgate/engine"
	et "github.com/jwtgate/jwtgate/engine/enginetest"
)

var update = flag.Bool("update", false, "rewrite golden files in testdata/")

// goldenTokens are the tokens stored in testdata/tokens/<name>.jwt; the name
// before the first '.' or '-' is the expected code ("valid" for none). They
// are signed with testdata/keys/rsa2048-a.pem (kid k1, project myapp) for
// the fixed clock testNow.
func goldenTokens(f *fixture) map[string]string {
	now := testNow.Unix()
	good := with(validClaims(), "groupRef", "g1", "consumerRef", "c1")
	h := et.Header("k1")
	s := func(h, p any) string { return et.SignRS256(f.priv, h, p) }
	return map[string]string{
		"valid":                             s(h, good),
		"valid-escaped":                     s([]byte(`{"alg":"RS\u0032\u0035\u0036","kid":"\u006b1","typ":"jwt"}`), []byte(`{"aud":["x","my\u0061pp"],"iat":1800000000,"exp":1800000300.9,"sub":"\u00e9\ud83d\ude00","groupRef":"g"}`)),
		"malformed-duplicate":               s([]byte(`{"alg":"RS256","kid":"k1","alg":"RS256"}`), good),
		"malformed-nested-duplicate":        s(h, []byte(`{"aud":"myapp","iat":1800000000,"exp":1800000300,"groupRef":"g","x":{"a":1,"a":2}}`)),
		"malformed-trailing":                s(h, []byte(`{"aud":"myapp","iat":1800000000,"exp":1800000300,"groupRef":"g"}{}`)),
		"malformed-lone-surrogate":          s(h, []byte(`{"aud":"myapp","iat":1800000000,"exp":1800000300,"groupRef":"g","sub":"\ud800"}`)),
		"malformed-exp-string":              s(h, with(good, "exp", "1800000300")),
		"malformed-exp-negative":            s(h, with(good, "exp", -1)),
		"malformed-exp-fraction-above-2p53": s(h, []byte(`{"aud":"myapp","iat":1800000000,"exp":9007199254740993.0,"groupRef":"g"}`)),
		"unsupported_algorithm-none":        et.SigningInput(map[string]any{"alg": "none", "kid": "k1"}, good) + ".AA",
		"unsupported_algorithm-hs256":       et.SignHS256(et.PublicPEM(&f.priv.PublicKey), map[string]any{"alg": "HS256", "kid": "k1"}, good),
		"unsupported_header-crit":           s(map[string]any{"alg": "RS256", "kid": "k1", "crit": []string{"b64"}, "b64": false}, good),
		"missing_kid":                       s(map[string]any{"alg": "RS256"}, good),
		"unknown_kid":                       s(et.Header("k9"), good),
		"key_inactive":                      et.SignRS256(f.off, et.Header("k3"), good),
		"missing_claim-iat":                 s(h, with(good, "iat", nil)),
		"expired":                           s(h, with(good, "iat", now-600, "exp", now-30)),
		"not_yet_valid":                     s(h, with(good, "nbf", now+60)),
		"issued_in_future":                  s(h, with(good, "iat", now+60, "exp", now+120)),
		"ttl_exceeded":                      s(h, with(good, "exp", now+660)),
		"audience_mismatch":                 s(h, with(good, "aud", []string{"other"})),
		"audience_mismatch-case":            s(h, with(good, "aud", "MyApp")),
		"invalid_signature-other-key":       et.SignRS256(f.other, h, good),
		"invalid_signature-jku-ignored":     s(map[string]any{"alg": "RS256", "kid": "k2", "jku": "https://evil.example/jwks.json", "jwk": map[string]any{"kty": "RSA"}}, with(good, "aud", "other")),
	}
}

func TestGoldenTokens(t *testing.T) {
	f := newFixture(t, engine.WithRequiredClaims("groupRef"))
	dir := et.Testdata("tokens")
	if *update {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		for name, tok := range goldenTokens(f) {
			if err := os.WriteFile(filepath.Join(dir, name+".jwt"), []byte(tok+"\n"), 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
	files, _ := filepath.Glob(filepath.Join(dir, "*.jwt"))
	if len(files) < 20 {
		t.Fatalf("found %d golden tokens in %s; run go test -run TestGoldenTokens -update ./engine", len(files), dir)
	}
	for _, file := range files {
		name := strings.TrimSuffix(filepath.Base(file), ".jwt")
		t.Run(name, func(t *testing.T) {
			raw, err := os.ReadFile(file)
			if err != nil {
				t.Fatal(err)
			}
			code := strings.SplitN(name, "-", 2)[0]
			_, err = f.v.Verify([]byte(strings.TrimSpace(string(raw))))
			if code == "valid" {
				if err != nil {
					t.Fatalf("Verify: %v", err)
				}
				return
			}
			want, ok := engine.ParseCode(code)
			if !ok {
				t.Fatalf("file name %q names no code", name)
			}
			if !errors.Is(err, engine.ErrorFor(want)) {
				t.Fatalf("Verify = %v, want %s", err, want)
			}
		})
	}
}
