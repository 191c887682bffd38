package server

import (
	"strings"
	"testing"
	"time"

	"github.com/jwtgate/jwtgate/engine"
	"github.com/jwtgate/jwtgate/engine/enginetest"
)

// The message of a 401 says what was wrong in terms of this server's
// configuration (its limits, the claim it requires); the error code and
// WWW-Authenticate stay those of the code (mustCode checks both).
func TestVerifyMessagesSayWhat(t *testing.T) {
	ts := startServer(t, Config{EngineOptions: []engine.Option{
		engine.WithMaxTTL(5 * time.Minute), engine.WithMaxTokenBytes(4096), engine.WithRequiredClaims("groupRef"),
	}})
	priv := enginetest.Key("rsa2048-a")
	ts.addKey("myapp", priv, "k1", "")
	good := map[string]any{"groupRef": "g1"}
	for _, tc := range []struct {
		name, token, code, message string
	}{
		{"ttl", token(priv, "k1", "myapp", now(), 600, good), "ttl_exceeded", "longer than this server's maximum of 5m0s (--max-ttl)"},
		{"too large", strings.Repeat("a", 5000), "token_too_large", "larger than this server's limit of 4096 bytes (--max-token-bytes)"},
		{"required absent", token(priv, "k1", "myapp", now(), 60, nil), "missing_claim", `no "groupRef" claim, which this server requires`},
		{"required wrong type", token(priv, "k1", "myapp", now(), 60, map[string]any{"groupRef": 7}), "missing_claim", `"groupRef" claim must be a non-empty string`},
		{"exp absent", enginetest.SignRS256(priv, enginetest.Header("k1"), map[string]any{"aud": "myapp", "iat": now(), "groupRef": "g"}), "missing_claim", "no exp claim"},
		{"iat absent", enginetest.SignRS256(priv, enginetest.Header("k1"), map[string]any{"aud": "myapp", "exp": now() + 60, "groupRef": "g"}), "missing_claim", "no iat claim"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := ts.verify(tc.token)
			mustCode(t, r, tc.code)
			if msg, _ := r.JSON(t)["message"].(string); !strings.Contains(msg, tc.message) {
				t.Errorf("message %q, want it to contain %q", msg, tc.message)
			}
		})
	}
	// A body over the verify listener's limit: 413 that gives the limit.
	r := do(t, "POST", ts.base+"/v1/verify", make([]byte, MaxVerifyBodyBytes+1))
	if r.Status != 413 || !strings.Contains(string(r.Body), "limit of 4 KiB") {
		t.Errorf("verify body too large: %d %s", r.Status, r.Body)
	}
	r = do(t, "POST", ts.admin+"/v1/projects/myapp/keys", make([]byte, MaxAdminBodyBytes+1), "Authorization", "Bearer "+testAdminToken)
	if r.Status != 413 || !strings.Contains(string(r.Body), "64 KiB") {
		t.Errorf("admin body too large: %d %s", r.Status, r.Body)
	}
	// A whole JWK Set posted as the body says what to send instead.
	r = ts.adminDo("POST", "/v1/projects/myapp/keys", map[string]any{"keys": []any{engine.JWKOf(&priv.PublicKey, "")}})
	if r.Status != 400 || !strings.Contains(string(r.Body), "key set") || !strings.Contains(string(r.Body), "send one key") {
		t.Errorf("JWKS body: %d %s", r.Status, r.Body)
	}
}
