package server

import (
	"crypto/x509"
	"encoding/base64"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/jwtgate/jwtgate/internal/apitest"
	"github.com/jwtgate/jwtgate/internal/customersample"
	"github.com/jwtgate/jwtgate/store/boltstore"
)

// TestGeneratedKeyPairFlow: the "download the private key once" flow on
// the embedded store, over the real server. The private key of a generated
// pair signs, with the customer's own library and calls (jwx v2), tokens
// that verify; it is in no later response, not in the log, and nowhere in
// the data directory. Rotation is the same gesture again: both keys verify
// until the first is deleted, then only the second.
func TestGeneratedKeyPairFlow(t *testing.T) {
	dir := t.TempDir()
	st, err := boltstore.Open(filepath.Join(dir, "keys.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	ts := startServer(t, Config{Store: st, DataDir: dir})
	tok := ts.srv.AdminToken()
	gen := func(body any) apitest.GeneratedKey {
		t.Helper()
		return apitest.Generate(t, ts.admin, tok, "acme", body)
	}
	sign := func(g apitest.GeneratedKey) string {
		t.Helper()
		return customersample.SignDownloaded(t, g.PrivatePEM, g.KID, "acme")
	}

	first := gen(map[string]any{"label": "first pair"})
	if first.Object["label"] != "first pair" || first.Object["bits"] != float64(2048) {
		t.Fatalf("first key: %v", first.Object)
	}
	tok1 := sign(first)
	if m := mustOK(t, ts.verify(tok1)); m["kid"] != first.KID || m["project"] != "acme" {
		t.Fatalf("verify: %v", m)
	}
	// The private key is never in a later response.
	for _, path := range []string{"/v1/projects/acme/keys/" + first.KID, "/v1/projects/acme/keys"} {
		r := ts.adminDo("GET", path, nil)
		if r.Status != 200 || strings.Contains(string(r.Body), "private") || strings.Contains(string(r.Body), "PRIVATE KEY") {
			t.Fatalf("GET %s: %d %s", path, r.Status, r.Body)
		}
	}

	// Rotation: a second pair, both verify; the first deleted, its tokens
	// are refused and the second's still verify.
	second := gen(nil) // no body: all defaults
	if second.KID == first.KID || second.Object["label"] != "" {
		t.Fatalf("second key: %v", second.Object)
	}
	tok2 := sign(second)
	mustOK(t, ts.verify(tok1))
	mustOK(t, ts.verify(tok2))
	if r := ts.adminDo("DELETE", "/v1/projects/acme/keys/"+first.KID+"?force=true", nil); r.Status != 204 {
		t.Fatalf("delete the first key: %d %s", r.Status, r.Body)
	}
	mustCode(t, ts.verify(tok1), "unknown_kid")
	mustCode(t, ts.verify(sign(first)), "unknown_kid")
	mustOK(t, ts.verify(tok2))

	// No private key material in the data directory (the bbolt file, the
	// admin token) nor in the log, for either pair.
	if err := st.Close(); err != nil { // flushes and unlocks the file
		t.Fatal(err)
	}
	var files int
	for _, g := range []apitest.GeneratedKey{first, second} {
		forms := apitest.PrivateKeyMaterial(t, g.Private, g.PrivatePEM)
		if found := apitest.FindMaterial(g.PrivatePEM, forms); len(found) == 0 {
			t.Fatal("the search does not find the private key in its own PEM")
		}
		err := filepath.WalkDir(dir, func(path string, d os.DirEntry, err error) error {
			if err != nil || d.IsDir() {
				return err
			}
			files++
			data, err := os.ReadFile(path)
			if err != nil {
				return err
			}
			if found := apitest.FindMaterial(data, forms); len(found) > 0 {
				t.Errorf("%s holds private key material of %s: %v", path, g.KID, found)
			}
			if strings.Contains(string(data), "PRIVATE KEY") {
				t.Errorf("%s holds a PEM private key", path)
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		if found := apitest.FindMaterial([]byte(ts.logs.String()), forms); len(found) > 0 {
			t.Errorf("the log holds private key material of %s: %v", g.KID, found)
		}
	}
	if files < 2 {
		t.Fatalf("searched %d files in the data directory, want the key store and the admin token", files)
	}
	// The public key is in the store: the search would find what is there.
	data, _ := os.ReadFile(filepath.Join(dir, "keys.db"))
	spki, _ := x509.MarshalPKIXPublicKey(&second.Private.PublicKey)
	if !strings.Contains(string(data), second.KID) || !strings.Contains(string(data), base64.StdEncoding.EncodeToString(spki)) {
		t.Fatal("the key store does not hold the second key's kid and public key as searched: the search proves nothing")
	}
}

// TestGenerateKeyRefusals: bad requests get a clear 400 and generate
// nothing; the route takes POST only; when every generation slot is busy a
// request waits, then gets 503 with Retry-After instead of queueing CPU
// work without bound.
func TestGenerateKeyRefusals(t *testing.T) {
	ts := startServer(t, Config{})
	for _, c := range []struct {
		body any
		code string
	}{
		{map[string]any{"bits": 1024}, "invalid_bits"},
		{map[string]any{"bits": 2000}, "invalid_bits"},
		{map[string]any{"bits": 8192}, "invalid_bits"},
		{map[string]any{"bits": "2048"}, "invalid_json"},
		{map[string]any{"kid": ".."}, "invalid_kid"},
		{map[string]any{"kid": ""}, "invalid_kid"},
		{map[string]any{"Label": "x"}, "invalid_json"},
		{map[string]any{"public_key": "x"}, "invalid_json"},
		{"[]", "invalid_json"},
	} {
		r := ts.adminDo("POST", "/v1/projects/acme/keys:generate", c.body)
		if r.Status != 400 || r.JSON(t)["error"] != c.code {
			t.Errorf("%v: %d %s, want 400 %s", c.body, r.Status, r.Body, c.code)
		}
	}
	if r := ts.adminDo("POST", "/v1/projects/Bad_Project/keys:generate", nil); r.Status != 400 {
		t.Errorf("bad project: %d %s", r.Status, r.Body)
	}
	if r := ts.adminDo("GET", "/v1/projects/acme/keys:generate", nil); r.Status != 405 || r.Header.Get("Allow") != "POST" {
		t.Errorf("GET: %d Allow=%q", r.Status, r.Header.Get("Allow"))
	}
	if r := do(t, "POST", ts.admin+"/v1/projects/acme/keys:generate", nil); r.Status != 401 {
		t.Errorf("no admin token: %d", r.Status)
	}
	// A kid that is taken: 409, as for registration.
	g := apitest.Generate(t, ts.admin, ts.srv.AdminToken(), "acme", map[string]any{"kid": "gen-1", "label": "l"})
	if g.KID != "gen-1" {
		t.Fatalf("kid %q", g.KID)
	}
	if r := ts.adminDo("POST", "/v1/projects/acme/keys:generate", map[string]any{"kid": "gen-1"}); r.Status != 409 {
		t.Errorf("taken kid: %d %s", r.Status, r.Body)
	}
	if r := ts.adminDo("GET", "/v1/projects/acme/keys", nil); strings.Count(string(r.Body), `"kid"`) != 1 {
		t.Errorf("refused requests registered keys: %s", r.Body)
	}

	// Every slot taken: the next generation waits, then 503.
	if cap(ts.srv.genSlots) < 1 || cap(ts.srv.genSlots) > max(1, runtimeProcs()/4) {
		t.Fatalf("%d generation slots", cap(ts.srv.genSlots))
	}
	old := generateWait
	generateWait = 200 * time.Millisecond
	t.Cleanup(func() { generateWait = old })
	for range cap(ts.srv.genSlots) {
		ts.srv.genSlots <- struct{}{}
	}
	start := time.Now()
	r := ts.adminDo("POST", "/v1/projects/acme/keys:generate", nil)
	if r.Status != 503 || r.Header.Get("Retry-After") == "" || r.JSON(t)["error"] != "busy" || time.Since(start) < generateWait {
		t.Errorf("all slots busy: %d %s after %v", r.Status, r.Body, time.Since(start))
	}
	for range cap(ts.srv.genSlots) {
		<-ts.srv.genSlots
	}
	apitest.Generate(t, ts.admin, ts.srv.AdminToken(), "acme", nil)
}

func runtimeProcs() int { return runtime.GOMAXPROCS(0) }
