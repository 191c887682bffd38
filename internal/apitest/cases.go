package apitest

import (
	"crypto/rsa"
	"strings"
	"time"

	"github.com/jwtgate/jwtgate/engine/enginetest"
)

// Case is one request that must be refused with Code: the Authorization
// header values to send (none, one, or a repeat) and the project the caller
// requires ("" for any).
type Case struct {
	Name          string
	Code          string
	Authorization []string
	Project       string
}

// CasesSetup is what EveryCode's cases assume of the verifier: Active (kid
// ActiveKID) registered and active in Project, Inactive (kid InactiveKID)
// registered there and inactive, RequiredClaim required, and the default
// leeway, max TTL (600 s) and max token size (8 KiB).
const (
	Project       = "myapp"
	ActiveKID     = "ka"
	InactiveKID   = "kb"
	RequiredClaim = "groupRef"
)

// Valid returns a token that verifies under CasesSetup.
func Valid(active *rsa.PrivateKey) string {
	return sign(active, ActiveKID, Project, time.Now().Unix(), 300, map[string]any{RequiredClaim: "g1"})
}

func sign(priv *rsa.PrivateKey, kid, project string, iat, ttl int64, extra map[string]any) string {
	return enginetest.Token(priv, kid, project, iat, ttl, extra)
}

// EveryCode returns requests covering every verification error code, for
// a verifier set up as CasesSetup says. Tests of each way into jwtgate (the
// verify listener, gRPC ext_authz, the middleware, a proxy in front) run
// them and compare the answers.
func EveryCode(active, inactive *rsa.PrivateKey) []Case {
	n := time.Now().Unix()
	g := map[string]any{RequiredClaim: "g1"}
	valid := sign(active, ActiveKID, Project, n, 300, g)
	b := func(tok string) []string { return []string{"Bearer " + tok} }
	return []Case{
		{"no header", "missing_token", nil, ""},
		{"bearer without token", "missing_token", []string{"Bearer"}, ""},
		{"too large", "token_too_large", b(strings.Repeat("a", 9000)), ""},
		{"two parts", "malformed", b("abc.def"), ""},
		{"basic scheme", "malformed", []string{"Basic " + valid}, ""},
		{"trailing data", "malformed", b(valid + " x"), ""},
		{"two authorization headers", "malformed", []string{"Bearer " + valid, "Bearer " + valid}, ""},
		{"hs256", "unsupported_algorithm", b(enginetest.SignHS256([]byte("secret"), map[string]any{"alg": "HS256", "kid": ActiveKID}, enginetest.Claims(Project, n, 300))), ""},
		{"none", "unsupported_algorithm", b(enginetest.Unsigned(map[string]any{"alg": "none", "kid": ActiveKID}, enginetest.Claims(Project, n, 300)) + "c2ln"), ""},
		{"crit", "unsupported_header", b(enginetest.SignRS256(active, map[string]any{"alg": "RS256", "kid": ActiveKID, "crit": []string{"x"}, "x": 1}, enginetest.Claims(Project, n, 300))), ""},
		{"no kid", "missing_kid", b(enginetest.SignRS256(active, map[string]any{"alg": "RS256"}, enginetest.Claims(Project, n, 300))), ""},
		{"unknown kid", "unknown_kid", b(sign(active, "nope", Project, n, 300, g)), ""},
		{"inactive key", "key_inactive", b(sign(inactive, InactiveKID, Project, n, 300, g)), ""},
		{"no exp", "missing_claim", b(sign(active, ActiveKID, Project, n, 300, map[string]any{RequiredClaim: "g", "exp": nil})), ""},
		{"required claim absent", "missing_claim", b(sign(active, ActiveKID, Project, n, 300, nil)), ""},
		{"expired", "expired", b(sign(active, ActiveKID, Project, n-400, 300, g)), ""},
		{"nbf", "not_yet_valid", b(sign(active, ActiveKID, Project, n, 300, map[string]any{RequiredClaim: "g", "nbf": n + 120})), ""},
		{"iat future", "issued_in_future", b(sign(active, ActiveKID, Project, n+120, 300, g)), ""},
		{"ttl", "ttl_exceeded", b(sign(active, ActiveKID, Project, n, 660, g)), ""},
		{"aud", "audience_mismatch", b(sign(active, ActiveKID, "other", n, 300, g)), ""},
		{"required project", "audience_mismatch", b(valid), "other"},
		{"signature", "invalid_signature", b(sign(inactive, ActiveKID, Project, n, 300, g)), ""},
	}
}
