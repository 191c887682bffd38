package server

import (
	"crypto/ecdsa"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"strings"
	"testing"
	"time"

	"github.com/jwtgate/jwtgate/engine"
	"github.com/jwtgate/jwtgate/engine/enginetest"
)

func pkcs1PEM(pub *rsa.PublicKey) string {
	return string(pem.EncodeToMemory(&pem.Block{Type: "RSA PUBLIC KEY", Bytes: x509.MarshalPKCS1PublicKey(pub)}))
}

func ecPublicPEM(t *testing.T) string {
	b, err := loadTestdataPrivate("ec256")
	if err != nil {
		t.Fatal(err)
	}
	ec, ok := b.(*ecdsa.PrivateKey)
	if !ok {
		t.Fatalf("ec256.pem is %T", b)
	}
	der, err := x509.MarshalPKIXPublicKey(&ec.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	return string(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}))
}

func loadTestdataPrivate(name string) (any, error) {
	raw, err := readFile(enginetest.Testdata("keys", name+".pem"))
	if err != nil {
		return nil, err
	}
	block, _ := pem.Decode(raw)
	return x509.ParsePKCS8PrivateKey(block.Bytes)
}

func certPEM(t *testing.T, priv *rsa.PrivateKey) string {
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "x"}, NotBefore: time.Now(), NotAfter: time.Now().Add(time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &priv.PublicKey, priv)
	if err != nil {
		t.Fatal(err)
	}
	return string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}))
}

func checkKeyObject(t *testing.T, m map[string]any, kid, project, label string, bits int, pub *rsa.PublicKey) {
	t.Helper()
	if kid != "" && m["kid"] != kid {
		t.Errorf("kid %v, want %s", m["kid"], kid)
	}
	if k, _ := m["kid"].(string); !engine.ValidKID(k) {
		t.Errorf("kid %q invalid", k)
	}
	if m["project"] != project || m["label"] != label || m["status"] != "active" || m["algorithm"] != "RS256" {
		t.Errorf("key object %v", m)
	}
	if m["bits"] != float64(bits) {
		t.Errorf("bits %v, want %d", m["bits"], bits)
	}
	if m["thumbprint"] != engine.Thumbprint(pub) {
		t.Errorf("thumbprint %v, want %s", m["thumbprint"], engine.Thumbprint(pub))
	}
	for _, f := range []string{"created_at", "updated_at"} {
		s, _ := m[f].(string)
		tm, err := time.Parse(time.RFC3339, s)
		if err != nil || !strings.HasSuffix(s, "Z") || time.Since(tm) > time.Minute {
			t.Errorf("%s = %q: not a recent RFC 3339 UTC time", f, s)
		}
	}
	if v, ok := m["last_used_at"]; !ok || v != nil {
		t.Errorf("last_used_at = %v (present %v), want null", v, ok)
	}
	if m["verified_count"] != float64(0) {
		t.Errorf("verified_count %v", m["verified_count"])
	}
	if len(m) != 11 {
		t.Errorf("key object has %d members, want 11: %v", len(m), m)
	}
}

func TestAdminAddKey(t *testing.T) {
	ts := startServer(t, Config{})
	a, b, c := enginetest.Key("rsa2048-a"), enginetest.Key("rsa2048-b"), enginetest.Key("rsa2048-c")
	r := ts.adminDo("POST", "/v1/projects/myapp/keys", map[string]any{"public_key": string(enginetest.PublicPEM(&a.PublicKey)), "label": "prod", "kid": "k-a"})
	if r.Status != 201 {
		t.Fatalf("SPKI: %d %s", r.Status, r.Body)
	}
	checkKeyObject(t, r.JSON(t), "k-a", "myapp", "prod", 2048, &a.PublicKey)

	r = ts.adminDo("POST", "/v1/projects/myapp/keys", map[string]any{"public_key": pkcs1PEM(&b.PublicKey), "label": "pkcs1"})
	if r.Status != 201 {
		t.Fatalf("PKCS#1: %d %s", r.Status, r.Body)
	}
	checkKeyObject(t, r.JSON(t), "", "myapp", "pkcs1", 2048, &b.PublicKey)

	jwk := engine.JWKOf(&c.PublicKey, "k-c")
	r = ts.adminDo("POST", "/v1/projects/myapp/keys", map[string]any{"jwk": jwk, "label": "jwk"})
	if r.Status != 201 {
		t.Fatalf("JWK: %d %s", r.Status, r.Body)
	}
	checkKeyObject(t, r.JSON(t), "k-c", "myapp", "jwk", 2048, &c.PublicKey)

	for _, name := range []string{"rsa3072", "rsa4096"} {
		k := enginetest.Key(name)
		r := ts.adminDo("POST", "/v1/projects/sizes/keys", map[string]any{"public_key": string(enginetest.PublicPEM(&k.PublicKey))})
		if r.Status != 201 {
			t.Fatalf("%s: %d %s", name, r.Status, r.Body)
		}
		checkKeyObject(t, r.JSON(t), "", "sizes", "", k.N.BitLen(), &k.PublicKey)
	}
	// The registered key verifies at once.
	mustOK(t, ts.verify(token(a, "k-a", "myapp", now(), 300, nil)))
	mustOK(t, ts.verify(token(c, "k-c", "myapp", now(), 300, nil)))
}

func TestAdminAddKeyErrors(t *testing.T) {
	ts := startServer(t, Config{})
	a := enginetest.Key("rsa2048-a")
	aPEM := string(enginetest.PublicPEM(&a.PublicKey))
	ts.addKey("myapp", a, "taken", "")
	small := enginetest.Key("rsa1024")
	privPEM := string(enginetest.PrivatePEM(enginetest.Key("rsa2048-b")))
	jwkPriv := map[string]any{"kty": "RSA", "n": engine.JWKOf(&a.PublicKey, "").N, "e": "AQAB", "d": "AQAB"}
	cases := []struct {
		name   string
		body   any
		status int
		code   string
		msg    string
	}{
		{"empty body", "", 400, "invalid_json", ""},
		{"not json", "{", 400, "invalid_json", ""},
		{"array", "[]", 400, "invalid_json", ""},
		{"trailing data", `{"public_key":"x"} {}`, 400, "invalid_json", ""},
		{"duplicate member", `{"label":"a","label":"b","public_key":"x"}`, 400, "invalid_json", ""},
		{"unknown member", map[string]any{"public_key": aPEM, "extra": 1}, 400, "invalid_json", "unknown field"},
		{"public_key wrong type", map[string]any{"public_key": 5}, 400, "invalid_json", ""},
		{"neither key", map[string]any{"label": "x"}, 400, "invalid_request", ""},
		{"both keys", map[string]any{"public_key": aPEM, "jwk": engine.JWKOf(&a.PublicKey, "")}, 400, "invalid_request", ""},
		{"not PEM", map[string]any{"public_key": "hello"}, 400, "invalid_key", "PEM"},
		{"two PEM blocks", map[string]any{"public_key": aPEM + aPEM}, 400, "invalid_key", "exactly one"},
		{"1024 bits", map[string]any{"public_key": string(enginetest.PublicPEM(&small.PublicKey))}, 400, "invalid_key", "2048"},
		{"EC key", map[string]any{"public_key": ecPublicPEM(t)}, 400, "invalid_key", "RSA"},
		{"certificate", map[string]any{"public_key": certPEM(t, a)}, 400, "invalid_key", "openssl x509 -pubkey -noout -in cert.pem"},
		{"JWK Set", map[string]any{"jwk": map[string]any{"keys": []any{engine.JWKOf(&a.PublicKey, "")}}}, 400, "invalid_key", "this is a key set (JWKS"},
		{"private key PEM", map[string]any{"public_key": privPEM, "kid": "priv-pem"}, 400, "private_key", "public key"},
		{"private JWK", map[string]any{"jwk": jwkPriv, "kid": "priv-jwk"}, 400, "private_key", "public key"},
		{"JWK EC", map[string]any{"jwk": map[string]any{"kty": "EC", "crv": "P-256", "x": "AA", "y": "AA"}}, 400, "invalid_key", "RSA"},
		{"JWK non-minimal n", map[string]any{"jwk": map[string]any{"kty": "RSA", "n": "AA" + engine.JWKOf(&a.PublicKey, "").N, "e": "AQAB"}}, 400, "invalid_key", ""},
		{"JWK bad alg", map[string]any{"jwk": map[string]any{"kty": "RSA", "n": engine.JWKOf(&a.PublicKey, "").N, "e": "AQAB", "alg": "RS512"}}, 400, "invalid_key", ""},
		{"bad kid", map[string]any{"public_key": aPEM, "kid": "a b"}, 400, "invalid_kid", ""},
		{"label with newline", map[string]any{"public_key": aPEM, "kid": "lbl", "label": "a\nb"}, 400, "invalid_label", "control characters"},
		{"duplicate kid", map[string]any{"public_key": aPEM, "kid": "taken"}, 409, "kid_taken", ""},
		{"too large", `{"label":"` + strings.Repeat("a", 70<<10) + `"}`, 413, "body_too_large", ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := ts.adminDo("POST", "/v1/projects/myapp/keys", tc.body)
			if r.Status != tc.status {
				t.Fatalf("status %d, want %d: %s", r.Status, tc.status, r.Body)
			}
			m := r.JSON(t)
			if m["error"] != tc.code {
				t.Fatalf("error %v, want %s: %s", m["error"], tc.code, r.Body)
			}
			if msg, _ := m["message"].(string); msg == "" || !strings.Contains(msg, tc.msg) {
				t.Fatalf("message %q does not mention %q", msg, tc.msg)
			}
		})
	}
	// A duplicate kid is refused across projects too.
	r := ts.adminDo("POST", "/v1/projects/other/keys", map[string]any{"public_key": aPEM, "kid": "taken"})
	if r.Status != 409 {
		t.Fatalf("cross-project duplicate kid: %d", r.Status)
	}
	// Private keys were neither stored nor logged.
	r = ts.adminDo("GET", "/v1/projects/myapp/keys", nil)
	var list struct{ Keys []map[string]any }
	if err := jsonUnmarshal(r.Body, &list); err != nil || len(list.Keys) != 1 {
		t.Fatalf("keys after errors: %s", r.Body)
	}
	logs := ts.logs.String()
	for _, secret := range []string{"PRIVATE KEY", strings.Split(privPEM, "\n")[1], testAdminToken} {
		if strings.Contains(logs, secret) {
			t.Fatalf("logs contain secret material %q", secret)
		}
	}
	// Invalid project id.
	r = ts.adminDo("POST", "/v1/projects/Bad.Project/keys", map[string]any{"public_key": aPEM})
	if r.Status != 400 || r.JSON(t)["error"] != "invalid_project" {
		t.Fatalf("bad project: %d %s", r.Status, r.Body)
	}
}

func TestAdminMinMaxKeyBits(t *testing.T) {
	ts := startServer(t, Config{EngineOptions: []engine.Option{engine.WithKeyPolicy(engine.KeyPolicy{MinBits: 3072, MaxBits: 3072})}})
	for name, want := range map[string]int{"rsa2048-a": 400, "rsa3072": 201, "rsa4096": 400} {
		k := enginetest.Key(name)
		r := ts.adminDo("POST", "/v1/projects/p/keys", map[string]any{"public_key": string(enginetest.PublicPEM(&k.PublicKey))})
		if r.Status != want {
			t.Errorf("%s: %d, want %d: %s", name, r.Status, want, r.Body)
		}
	}
}

func TestAdminAuth(t *testing.T) {
	ts := startServer(t, Config{})
	url := ts.admin + "/v1/projects/myapp/keys"
	for name, hdrs := range map[string][]string{
		"missing":       nil,
		"wrong":         {"Authorization", "Bearer wrong-token-0123456789"},
		"prefix":        {"Authorization", "Bearer " + testAdminToken[:10]},
		"longer":        {"Authorization", "Bearer " + testAdminToken + "x"},
		"basic":         {"Authorization", "Basic " + testAdminToken},
		"no scheme":     {"Authorization", testAdminToken},
		"two headers":   {"Authorization", "Bearer " + testAdminToken, "Authorization", "Bearer " + testAdminToken},
		"empty bearer":  {"Authorization", "Bearer "},
		"verify token?": {"Authorization", "Bearer " + token(enginetest.Key("rsa2048-a"), "k", "myapp", now(), 60, nil)},
	} {
		r := do(t, "GET", url, nil, hdrs...)
		if r.Status != 401 || r.JSON(t)["error"] != "unauthorized" {
			t.Errorf("%s: %d %s", name, r.Status, r.Body)
		}
	}
	if r := do(t, "GET", url, nil, "Authorization", "bearer "+testAdminToken); r.Status != 200 {
		t.Fatalf("lower-case scheme: %d", r.Status)
	}
}

func TestAdminGetUpdateDelete(t *testing.T) {
	ts := startServer(t, Config{})
	a, b := enginetest.Key("rsa2048-a"), enginetest.Key("rsa2048-b")
	ts.addKey("myapp", a, "k1", "first")
	time.Sleep(2 * time.Millisecond)
	ts.addKey("myapp", b, "k2", "second")
	ts.addKey("other", enginetest.Key("rsa2048-c"), "k3", "")

	r := ts.adminDo("GET", "/v1/projects/myapp/keys", nil)
	var list struct{ Keys []map[string]any }
	if r.Status != 200 || jsonUnmarshal(r.Body, &list) != nil || len(list.Keys) != 2 || list.Keys[0]["kid"] != "k1" || list.Keys[1]["kid"] != "k2" {
		t.Fatalf("list: %d %s", r.Status, r.Body)
	}
	r = ts.adminDo("GET", "/v1/projects/empty/keys", nil)
	if r.Status != 200 || strings.TrimSpace(string(r.Body)) != `{"keys":[]}` {
		t.Fatalf("empty list: %d %s", r.Status, r.Body)
	}
	r = ts.adminDo("GET", "/v1/projects/myapp/keys/k1", nil)
	if r.Status != 200 {
		t.Fatalf("get: %d", r.Status)
	}
	checkKeyObject(t, r.JSON(t), "k1", "myapp", "first", 2048, &a.PublicKey)
	for _, p := range []string{"/v1/projects/myapp/keys/nope", "/v1/projects/myapp/keys/k3", "/v1/projects/other/keys/k1", "/v1/projects/myapp/keys/bad!kid"} {
		if r := ts.adminDo("GET", p, nil); r.Status != 404 || r.JSON(t)["error"] != "not_found" {
			t.Errorf("GET %s: %d %s", p, r.Status, r.Body)
		}
	}
	// A percent-escape is never decoded into a route (see TestAdminRawPathDotSegments).
	if r := ts.adminDo("GET", "/v1/projects/myapp/keys/bad%20kid", nil); r.Status != 400 || r.JSON(t)["error"] != "invalid_request" {
		t.Errorf("GET escaped kid: %d %s", r.Status, r.Body)
	}

	r = ts.adminDo("PATCH", "/v1/projects/myapp/keys/k1", map[string]any{"label": "renamed"})
	if r.Status != 200 || r.JSON(t)["label"] != "renamed" || r.JSON(t)["status"] != "active" {
		t.Fatalf("patch label: %d %s", r.Status, r.Body)
	}
	r = ts.adminDo("PATCH", "/v1/projects/myapp/keys/k1", map[string]any{"status": "inactive"})
	if r.Status != 200 || r.JSON(t)["status"] != "inactive" || r.JSON(t)["label"] != "renamed" {
		t.Fatalf("patch status: %d %s", r.Status, r.Body)
	}
	mustCode(t, ts.verify(token(a, "k1", "myapp", now(), 300, nil)), "key_inactive")
	r = ts.adminDo("PATCH", "/v1/projects/myapp/keys/k1", map[string]any{"status": "active"})
	if r.Status != 200 {
		t.Fatalf("reactivate: %d", r.Status)
	}
	mustOK(t, ts.verify(token(a, "k1", "myapp", now(), 300, nil)))
	for name, c := range map[string]struct {
		path   string
		body   any
		status int
		code   string
	}{
		"bad status":    {"/v1/projects/myapp/keys/k1", map[string]any{"status": "disabled"}, 400, "invalid_status"},
		"status type":   {"/v1/projects/myapp/keys/k1", map[string]any{"status": true}, 400, "invalid_json"},
		"unknown field": {"/v1/projects/myapp/keys/k1", map[string]any{"kid": "x"}, 400, "invalid_json"},
		"bad json":      {"/v1/projects/myapp/keys/k1", "{", 400, "invalid_json"},
		"long label":    {"/v1/projects/myapp/keys/k1", map[string]any{"label": strings.Repeat("x", 300)}, 400, "invalid_label"},
		"unknown kid":   {"/v1/projects/myapp/keys/nope", map[string]any{"label": "x"}, 404, "not_found"},
		"other project": {"/v1/projects/other/keys/k1", map[string]any{"status": "inactive"}, 404, "not_found"},
	} {
		r := ts.adminDo("PATCH", c.path, c.body)
		if r.Status != c.status || r.JSON(t)["error"] != c.code {
			t.Errorf("%s: %d %s", name, r.Status, r.Body)
		}
	}
	// The failed cross-project PATCH changed nothing.
	mustOK(t, ts.verify(token(a, "k1", "myapp", now(), 300, nil)))

	if r := ts.adminDo("DELETE", "/v1/projects/other/keys/k1", nil); r.Status != 404 {
		t.Fatalf("cross-project delete: %d", r.Status)
	}
	// k1 verified a token just now: the rotation guardrail refuses, force
	// overrides it.
	if r := ts.adminDo("DELETE", "/v1/projects/myapp/keys/k1", nil); r.Status != 409 || r.JSON(t)["error"] != "key_in_use" {
		t.Fatalf("delete of a key in use: %d %s", r.Status, r.Body)
	}
	if r := ts.adminDo("DELETE", "/v1/projects/myapp/keys/k1?force=true", nil); r.Status != 204 || len(r.Body) != 0 {
		t.Fatalf("delete: %d %s", r.Status, r.Body)
	}
	mustCode(t, ts.verify(token(a, "k1", "myapp", now(), 300, nil)), "unknown_kid")
	if r := ts.adminDo("DELETE", "/v1/projects/myapp/keys/k1", nil); r.Status != 404 {
		t.Fatalf("second delete: %d", r.Status)
	}
	if r := ts.adminDo("GET", "/v1/projects/myapp/keys/k1", nil); r.Status != 404 {
		t.Fatalf("get deleted: %d", r.Status)
	}
}

func TestAdminMethodsAndRoutes(t *testing.T) {
	ts := startServer(t, Config{})
	for _, c := range []struct{ method, path, allow string }{
		{"PUT", "/v1/projects/myapp/keys", "GET, POST"},
		{"DELETE", "/v1/projects/myapp/keys", "GET, POST"},
		{"POST", "/v1/projects/myapp/keys/k1", "GET, PATCH, DELETE"},
		{"PUT", "/v1/projects/myapp/keys/k1", "GET, PATCH, DELETE"},
		{"POST", "/metrics", "GET, HEAD"},
	} {
		r := ts.adminDo(c.method, c.path, nil)
		if r.Status != 405 || r.Header.Get("Allow") != c.allow {
			t.Errorf("%s %s: %d Allow=%q", c.method, c.path, r.Status, r.Header.Get("Allow"))
		}
	}
	for _, p := range []string{"/v1/projects/myapp", "/v1/projects/myapp/keys/k1/x", "/v1/other", "/nope"} {
		if r := ts.adminDo("GET", p, nil); r.Status != 404 {
			t.Errorf("GET %s: %d", p, r.Status)
		}
	}
}

func TestMetrics(t *testing.T) {
	ts := startServer(t, Config{})
	a := enginetest.Key("rsa2048-a")
	ts.addKey("myapp", a, "k1", "")
	tok := token(a, "k1", "myapp", now(), 300, nil)
	for range 3 {
		mustOK(t, ts.verify(tok))
	}
	mustCode(t, ts.verify(token(a, "k1", "myapp", now()-1000, 300, nil)), "expired")
	mustCode(t, ts.verify(token(a, "nope", "myapp", now(), 300, nil)), "unknown_kid")
	do(t, "GET", ts.admin+"/v1/projects/myapp/keys", nil) // 401
	r := do(t, "GET", ts.admin+"/metrics", nil)
	if r.Status != 200 || !strings.HasPrefix(r.Header.Get("Content-Type"), "text/plain; version=0.0.4") {
		t.Fatalf("metrics: %d %v", r.Status, r.Header)
	}
	body := string(r.Body)
	for _, want := range []string{
		`jwtgate_verifications_total{result="ok"} 3`,
		`jwtgate_verifications_total{result="expired"} 1`,
		`jwtgate_verifications_total{result="unknown_kid"} 1`,
		`jwtgate_verifications_total{result="invalid_signature"} 0`,
		`jwtgate_verifications_total{result="unavailable"} 0`,
		`# TYPE jwtgate_verify_duration_seconds histogram`,
		`jwtgate_verify_duration_seconds_bucket{le="+Inf"} 5`,
		`jwtgate_verify_duration_seconds_count 5`,
		`jwtgate_verify_duration_seconds_sum `,
		`jwtgate_key_cache_hits_total `,
		`jwtgate_key_cache_misses_total `,
		`jwtgate_key_cache_size 1`,
		`jwtgate_token_cache_hits_total 2`,
		`jwtgate_token_cache_misses_total `,
		`jwtgate_token_cache_size 1`,
		`jwtgate_admin_requests_total{method="POST",route="/v1/projects/{project}/keys",status="201"} 1`,
		`jwtgate_admin_requests_total{method="GET",route="/v1/projects/{project}/keys",status="401"} 1`,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("metrics lack %q", want)
		}
	}
	// Every sample line is "name{labels} value" or "name value".
	for _, line := range strings.Split(strings.TrimSpace(body), "\n") {
		if strings.HasPrefix(line, "#") {
			continue
		}
		if f := strings.Fields(line); len(f) != 2 {
			t.Errorf("bad sample line %q", line)
		}
	}
}
