package server

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"net/http"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jwtgate/jwtgate/engine"
	"github.com/jwtgate/jwtgate/engine/enginetest"
	"github.com/jwtgate/jwtgate/store/boltstore"
)

// Flow 1: a SaaS customer registers its public key, mints tokens on its own
// server and every request verifies with its identity headers; an
// 11-minute token is refused.
func TestFlowCustomer(t *testing.T) {
	ts := startServer(t, Config{
		EngineOptions: []engine.Option{engine.WithRequiredClaims("groupRef", "consumerRef")},
		ClaimHeaders:  map[string]string{"groupRef": "X-Group-Ref", "consumerRef": "X-Consumer-Ref"},
	})
	priv, err := rsa.GenerateKey(rand.Reader, 2048) // the customer's own key pair
	if err != nil {
		t.Fatal(err)
	}
	key := ts.addKey("acme", priv, "", "acme prod")
	kid := key["kid"].(string)
	if !engine.ValidKID(kid) {
		t.Fatalf("server-made kid %q", kid)
	}
	mint := func(ttl int64, consumer string) string {
		n := now()
		return enginetest.SignRS256(priv,
			map[string]any{"alg": "RS256", "kid": kid, "typ": "JWT"},
			map[string]any{"aud": []string{"acme"}, "iat": n, "exp": n + ttl, "groupRef": "grp-42", "consumerRef": consumer})
	}
	for i, ttl := range []int64{300, 600, 300, 600} {
		consumer := "consumer-" + string(rune('a'+i))
		r := ts.verify(mint(ttl, consumer))
		m := mustOK(t, r)
		if m["project"] != "acme" || m["kid"] != kid {
			t.Fatalf("body %s", r.Body)
		}
		if r.Header.Get("X-Group-Ref") != "grp-42" || r.Header.Get("X-Consumer-Ref") != consumer ||
			r.Header.Get("X-Jwt-Project") != "acme" || r.Header.Get("X-Jwt-Kid") != kid {
			t.Fatalf("identity headers %v", r.Header)
		}
	}
	mustCode(t, ts.verify(mint(660, "c")), "ttl_exceeded")
	// A token without a tenant claim is refused too.
	n := now()
	mustCode(t, ts.verify(enginetest.SignRS256(priv, enginetest.Header(kid),
		map[string]any{"aud": []string{"acme"}, "iat": n, "exp": n + 300, "groupRef": "g"})), "missing_claim")
}

// Flow 2: rotation.
func TestFlowRotation(t *testing.T) {
	ts := startServer(t, Config{})
	oldKey, newKey := enginetest.Key("rsa2048-a"), enginetest.Key("rsa2048-b")
	ts.addKey("acme", oldKey, "old", "2025")
	mustOK(t, ts.verify(token(oldKey, "old", "acme", now(), 300, nil)))
	mustOK(t, ts.verify(token(oldKey, "old", "acme", now(), 300, map[string]any{"jti": "2"})))
	ts.addKey("acme", newKey, "new", "2026")
	mustOK(t, ts.verify(token(newKey, "new", "acme", now(), 300, nil)))
	mustOK(t, ts.verify(token(oldKey, "old", "acme", now(), 300, map[string]any{"jti": "3"})))

	get := func(kid string) map[string]any {
		r := ts.adminDo("GET", "/v1/projects/acme/keys/"+kid, nil)
		if r.Status != 200 {
			t.Fatalf("get %s: %d", kid, r.Status)
		}
		return r.JSON(t)
	}
	old := get("old")
	if old["verified_count"] != float64(3) {
		t.Fatalf("old verified_count %v, want 3", old["verified_count"])
	}
	last, _ := old["last_used_at"].(string)
	lt, err := time.Parse(time.RFC3339, last)
	if err != nil || time.Since(lt) > time.Minute || !strings.HasSuffix(last, "Z") {
		t.Fatalf("old last_used_at %q", last)
	}
	if get("new")["verified_count"] != float64(1) {
		t.Fatal("new key's count")
	}

	// The customer moves to the new key; the old one is deactivated (it
	// verified a token a moment ago: the guardrail wants force).
	if r := ts.adminDo("PATCH", "/v1/projects/acme/keys/old", map[string]any{"status": "inactive"}); r.Status != 409 {
		t.Fatalf("deactivate in use: %d, want 409", r.Status)
	}
	if r := ts.adminDo("PATCH", "/v1/projects/acme/keys/old?force=true", map[string]any{"status": "inactive"}); r.Status != 200 {
		t.Fatalf("deactivate: %d", r.Status)
	}
	mustCode(t, ts.verify(token(oldKey, "old", "acme", now(), 300, nil)), "key_inactive")
	mustOK(t, ts.verify(token(newKey, "new", "acme", now(), 300, map[string]any{"jti": "x"})))
	old = get("old")
	if old["verified_count"] != float64(3) || old["last_used_at"] != last || old["status"] != "inactive" {
		t.Fatalf("old key after deactivation: %v", old)
	}
	// The JWKS no longer lists it.
	r := do(t, "GET", ts.base+"/v1/projects/acme/jwks.json", nil)
	if strings.Contains(string(r.Body), `"old"`) || !strings.Contains(string(r.Body), `"new"`) {
		t.Fatalf("jwks after rotation: %s", r.Body)
	}
	if r := ts.adminDo("DELETE", "/v1/projects/acme/keys/old", nil); r.Status != 204 {
		t.Fatalf("delete: %d", r.Status)
	}
	mustCode(t, ts.verify(token(oldKey, "old", "acme", now(), 300, nil)), "unknown_kid")
	mustOK(t, ts.verify(token(newKey, "new", "acme", now(), 300, map[string]any{"jti": "y"})))
}

// Flow 3: isolation between projects.
func TestFlowIsolation(t *testing.T) {
	ts := startServer(t, Config{})
	ka, kb := enginetest.Key("rsa2048-a"), enginetest.Key("rsa2048-b")
	ts.addKey("proj-a", ka, "ka", "")
	ts.addKey("proj-b", kb, "kb", "")
	// A's key never verifies a token whose aud is only B.
	mustCode(t, ts.verify(token(ka, "ka", "proj-b", now(), 300, nil)), "audience_mismatch")
	mustCode(t, ts.verify(token(ka, "ka", "proj-b", now(), 300, map[string]any{"aud": "proj-b"})), "audience_mismatch")
	// A token for A, asked for as B, is refused.
	r := do(t, "GET", ts.base+"/v1/verify?project=proj-b", nil, "Authorization", "Bearer "+token(ka, "ka", "proj-a", now(), 300, nil))
	mustCode(t, r, "audience_mismatch")
	// Signed by B's key but naming A's kid: invalid signature.
	mustCode(t, ts.verify(token(kb, "ka", "proj-a", now(), 300, nil)), "invalid_signature")
	mustOK(t, ts.verify(token(ka, "ka", "proj-a", now(), 300, nil)))

	// B's admin routes never show A's keys.
	r = ts.adminDo("GET", "/v1/projects/proj-b/keys", nil)
	if strings.Contains(string(r.Body), `"ka"`) || !strings.Contains(string(r.Body), `"kb"`) {
		t.Fatalf("B's list: %s", r.Body)
	}
	for _, m := range []string{"GET", "DELETE"} {
		if r := ts.adminDo(m, "/v1/projects/proj-b/keys/ka", nil); r.Status != 404 {
			t.Fatalf("%s B/ka: %d", m, r.Status)
		}
	}
	if r := ts.adminDo("PATCH", "/v1/projects/proj-b/keys/ka", map[string]any{"status": "inactive"}); r.Status != 404 {
		t.Fatalf("PATCH B/ka: %d", r.Status)
	}
	r = do(t, "GET", ts.base+"/v1/projects/proj-b/jwks.json", nil)
	if strings.Contains(string(r.Body), `"ka"`) {
		t.Fatalf("B's JWKS shows A's key: %s", r.Body)
	}
	mustOK(t, ts.verify(token(ka, "ka", "proj-a", now(), 300, map[string]any{"jti": "z"})))
}

// PATCH to inactive while 32 goroutines verify: no 200 for that key from a
// request sent after the PATCH response.
func TestRaceDeactivateWhileVerifying(t *testing.T) {
	ts := startServer(t, Config{})
	a := enginetest.Key("rsa2048-a")
	ts.addKey("acme", a, "k1", "")
	tok := token(a, "k1", "acme", now(), 300, nil) // one token: the token cache is hot
	mustOK(t, ts.verify(tok))

	tr := &http.Transport{MaxIdleConnsPerHost: 64}
	defer tr.CloseIdleConnections()
	hc := &http.Client{Transport: tr, Timeout: 10 * time.Second}
	var patched atomic.Bool
	var stop atomic.Bool
	var okBefore, okAfterBad, refusedAfter atomic.Int64
	var wg sync.WaitGroup
	errc := make(chan error, 32)
	for range 32 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for !stop.Load() {
				after := patched.Load() // read before the request is sent
				req, _ := http.NewRequest("GET", ts.base+"/v1/verify", nil)
				req.Header.Set("Authorization", "Bearer "+tok)
				resp, err := hc.Do(req)
				if err != nil {
					errc <- err
					return
				}
				resp.Body.Close()
				switch {
				case resp.StatusCode == 200 && after:
					okAfterBad.Add(1)
				case resp.StatusCode == 200:
					okBefore.Add(1)
				case after && resp.StatusCode == 401 && resp.Header.Get("WWW-Authenticate") == `Bearer error="invalid_token", error_description="key_inactive"`:
					refusedAfter.Add(1)
				case resp.StatusCode != 401:
					errc <- errUnexpected(resp.StatusCode)
					return
				}
			}
		}()
	}
	time.Sleep(200 * time.Millisecond)
	r := ts.adminDo("PATCH", "/v1/projects/acme/keys/k1?force=true", map[string]any{"status": "inactive"})
	if r.Status != 200 {
		t.Fatalf("patch: %d", r.Status)
	}
	patched.Store(true)
	time.Sleep(300 * time.Millisecond)
	stop.Store(true)
	wg.Wait()
	close(errc)
	for err := range errc {
		t.Fatal(err)
	}
	if okAfterBad.Load() != 0 {
		t.Fatalf("%d requests sent after the PATCH response were answered 200", okAfterBad.Load())
	}
	if okBefore.Load() == 0 || refusedAfter.Load() == 0 {
		t.Fatalf("test did not exercise both sides: %d ok before, %d refused after", okBefore.Load(), refusedAfter.Load())
	}
	t.Logf("%d verified before the PATCH, %d refused after", okBefore.Load(), refusedAfter.Load())
}

type errUnexpected int

func (e errUnexpected) Error() string { return "unexpected status " + http.StatusText(int(e)) }

// Keys, statuses and usage survive a restart on the bolt store.
func TestRestartPersistence(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "keys.db")
	a, b := enginetest.Key("rsa2048-a"), enginetest.Key("rsa2048-b")

	st, err := boltstore.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	ts := startServer(t, Config{Store: st, DataDir: dir})
	tokenPath := ts.srv.AdminTokenPath()
	if tokenPath != filepath.Join(dir, "admin-token") {
		t.Fatalf("admin token path %q", tokenPath)
	}
	ts.addKey("acme", a, "ka", "first")
	ts.addKey("acme", b, "kb", "second")
	ts.adminDo("PATCH", "/v1/projects/acme/keys/kb", map[string]any{"status": "inactive", "label": "retired"})
	for i := range 4 {
		mustOK(t, ts.verify(token(a, "ka", "acme", now(), 300, map[string]any{"jti": string(rune('0' + i))})))
	}
	firstToken := ts.srv.AdminToken()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := ts.srv.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}

	st2, err := boltstore.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer st2.Close()
	ts2 := startServer(t, Config{Store: st2, DataDir: dir})
	if ts2.srv.AdminToken() != firstToken {
		t.Fatal("the generated admin token changed across restarts")
	}
	r := ts2.adminDo("GET", "/v1/projects/acme/keys/ka", nil)
	if r.Status != 200 || r.JSON(t)["verified_count"] != float64(4) || r.JSON(t)["last_used_at"] == nil {
		t.Fatalf("ka after restart: %d %s", r.Status, r.Body)
	}
	r = ts2.adminDo("GET", "/v1/projects/acme/keys/kb", nil)
	if r.Status != 200 || r.JSON(t)["status"] != "inactive" || r.JSON(t)["label"] != "retired" {
		t.Fatalf("kb after restart: %s", r.Body)
	}
	mustOK(t, ts2.verify(token(a, "ka", "acme", now(), 300, nil)))
	mustCode(t, ts2.verify(token(b, "kb", "acme", now(), 300, nil)), "key_inactive")
}
