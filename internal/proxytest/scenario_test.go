package proxytest

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/jwtgate/jwtgate/engine"
	"github.com/jwtgate/jwtgate/engine/enginetest"
	"github.com/jwtgate/jwtgate/internal/apitest"
	"github.com/jwtgate/jwtgate/server"
	"github.com/jwtgate/jwtgate/server/servertest"
)

// startJWTGate starts a real jwtgate with key k1 of project myapp.
func startJWTGate(t *testing.T) *server.Server {
	t.Helper()
	srv := servertest.Start(t, server.Config{Store: engine.NewMemoryStore(), AdminToken: "proxytest-admin-token-0123456789"})
	priv := enginetest.Key("rsa2048-a")
	if _, err := srv.Verifier().AddKey(context.Background(), &engine.Key{KID: "k1", Project: "myapp", Public: &priv.PublicKey}); err != nil {
		t.Fatal(err)
	}
	return srv
}

func mint(iat, ttl int64, extra map[string]any) string {
	c := enginetest.Claims("myapp", iat, ttl)
	for k, v := range extra {
		if v == nil {
			delete(c, k)
		} else {
			c[k] = v
		}
	}
	return enginetest.SignRS256(enginetest.Key("rsa2048-a"), enginetest.Header("k1"), c)
}

// checkProxy sends requests through the proxy at base (in front of api and
// a jwtgate from startJWTGate) and checks what the client and the API get.
// jwtgateBody says whether refusals carry jwtgate's own JSON body.
func checkProxy(t *testing.T, base string, api *API, jwtgateBody bool) {
	now := time.Now().Unix()
	valid := mint(now, 300, nil)

	t.Run("valid token, identity headers upstream", func(t *testing.T) {
		r := apitest.Do(t, "GET", base+"/api/orders?x=1", nil, "Authorization", "Bearer "+valid, "X-Jwt-Project", "evil")
		if r.Status != 200 {
			t.Fatalf("status %d: %s", r.Status, r.Body)
		}
		var s Seen
		if err := json.Unmarshal(r.Body, &s); err != nil {
			t.Fatalf("API answer %s: %v", r.Body, err)
		}
		for h, want := range map[string]string{"X-Jwt-Project": "myapp", "X-Jwt-Kid": "k1", "X-Jwt-Subject": "user-1", "Authorization": "Bearer " + valid} {
			if s.Headers[h] != want {
				t.Errorf("API got %s=%q, want %q", h, s.Headers[h], want)
			}
		}
		if s.Path != "/api/orders?x=1" || s.Method != "GET" {
			t.Errorf("API got %s %s", s.Method, s.Path)
		}
	})
	t.Run("any method, body reaches the API", func(t *testing.T) {
		for _, m := range []string{"PUT", "PATCH", "DELETE", "POST"} {
			r := apitest.Do(t, m, base+"/api/orders/42", []byte(`{"qty":2}`), "Authorization", "Bearer "+valid)
			var s Seen
			if r.Status != 200 || json.Unmarshal(r.Body, &s) != nil || s.Method != m || s.Body != `{"qty":2}` {
				t.Fatalf("%s: %d %s", m, r.Status, r.Body)
			}
		}
	})
	t.Run("no sub: a spoofed X-Jwt-Subject does not reach the API", func(t *testing.T) {
		r := apitest.Do(t, "GET", base+"/api/me", nil, "Authorization", "Bearer "+mint(now, 300, map[string]any{"sub": nil}), "X-Jwt-Subject", "admin")
		var s Seen
		if r.Status != 200 || json.Unmarshal(r.Body, &s) != nil {
			t.Fatalf("%d %s", r.Status, r.Body)
		}
		if v, ok := s.Headers["X-Jwt-Subject"]; ok {
			t.Fatalf("API got X-Jwt-Subject=%q from the client", v)
		}
	})
	for _, tc := range []struct {
		name, auth, www, code string
	}{
		{"no token", "", `Bearer realm="jwtgate"`, "missing_token"},
		{"expired", "Bearer " + mint(now-400, 300, nil), `Bearer error="invalid_token", error_description="expired"`, "expired"},
		{"bad signature", "Bearer " + valid[:len(valid)-4] + "AAAA", `Bearer error="invalid_token", error_description="invalid_signature"`, "invalid_signature"},
		{"unknown kid", "Bearer " + enginetest.SignRS256(enginetest.Key("rsa2048-a"), enginetest.Header("nope"), enginetest.Claims("myapp", now, 300)), `Bearer error="invalid_token", error_description="unknown_kid"`, "unknown_kid"},
	} {
		t.Run("refused: "+tc.name, func(t *testing.T) {
			before := api.Calls.Load()
			var hdrs []string
			if tc.auth != "" {
				hdrs = []string{"Authorization", tc.auth}
			}
			r := apitest.Do(t, "POST", base+"/api/orders", []byte("{}"), hdrs...)
			if r.Status != 401 || r.Header.Get("WWW-Authenticate") != tc.www {
				t.Fatalf("status %d WWW-Authenticate %q, want 401 %q; body %s", r.Status, r.Header.Get("WWW-Authenticate"), tc.www, r.Body)
			}
			if jwtgateBody && !strings.Contains(string(r.Body), `"error":"`+tc.code+`"`) {
				t.Fatalf("body %s, want jwtgate's %s body", r.Body, tc.code)
			}
			if api.Calls.Load() != before {
				t.Fatal("the API was called for a refused request")
			}
		})
	}
}
