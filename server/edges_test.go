package server

// Tests of the HTTP edges: hostile and careless input on both listeners
// (raw-path routing, forward-auth of any shape, strict query and JSON, body
// and header bounds). Each starts the real server on loopback.

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jwtgate/jwtgate/engine"
	"github.com/jwtgate/jwtgate/engine/enginetest"
)

// rawExchange sends req (a whole HTTP/1.1 request, written as given: no
// path cleaning or escaping by a client library) to addr and reads one
// response. A connection reset or a close without a response is an error.
func rawExchange(t testing.TB, addr string, req []byte) (*http.Response, []byte, error) {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	werr := make(chan error, 1)
	go func() { _, err := c.Write(req); werr <- err }()
	method, _, _ := strings.Cut(string(req), " ")
	resp, err := http.ReadResponse(bufio.NewReader(c), &http.Request{Method: method})
	if err != nil {
		return nil, nil, err
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	// The answer is in; a write still under way ends with the connection.
	c.Close()
	<-werr
	return resp, body, err
}

// rawRequest builds a request with the request-target exactly as given.
func rawRequest(method, target string, headers ...string) []byte {
	var b strings.Builder
	b.WriteString(method + " " + target + " HTTP/1.1\r\nHost: jwtgate.test\r\nConnection: close\r\n")
	for i := 0; i+1 < len(headers); i += 2 {
		b.WriteString(headers[i] + ": " + headers[i+1] + "\r\n")
	}
	b.WriteString("\r\n")
	return []byte(b.String())
}

func mustRaw(t testing.TB, addr string, req []byte) (*http.Response, []byte) {
	t.Helper()
	resp, body, err := rawExchange(t, addr, req)
	if err != nil {
		t.Fatalf("request %q: %v", firstLine(req), err)
	}
	return resp, body
}

func firstLine(req []byte) string {
	s := string(req)
	if i := strings.Index(s, "\r\n"); i >= 0 {
		return s[:i]
	}
	return s
}

func mustInvalidRequest(t *testing.T, resp *http.Response, body []byte, what string) {
	t.Helper()
	if resp.StatusCode != 400 || !strings.Contains(string(body), `"error":"invalid_request"`) {
		t.Errorf("%s: %d %s, want 400 invalid_request", what, resp.StatusCode, body)
	}
}

// Issue 9 item 1: the admin router acted on the cleaned path, so a dot
// segment reached (and deleted) another project's key.
func TestAdminRawPathDotSegments(t *testing.T) {
	ts := startServer(t, Config{})
	ts.addKey("proj-a", enginetest.Key("rsa2048-a"), "ka", "")
	ts.addKey("proj-b", enginetest.Key("rsa2048-b"), "kb", "")
	auth := []string{"Authorization", "Bearer " + testAdminToken}
	addr := ts.srv.AdminAddr()
	for _, target := range []string{
		"/v1/projects/proj-a/../proj-b/keys/kb",
		"/v1/projects/proj-a/keys/../../proj-b/keys/kb",
		"/v1/projects/proj-b/keys/./kb",
		"/v1/projects/./proj-b/keys/kb",
		"/v1/projects/proj-b//keys/kb",
		"//v1/projects/proj-b/keys/kb",
		"/v1/projects/proj-b/keys/kb/",
		"/v1/projects/proj-a/%2e%2e/proj-b/keys/kb",
		"/v1/projects/proj-a/%2E%2E/proj-b/keys/kb",
		"/v1/projects/proj-a/.%2e/proj-b/keys/kb",
		"/v1/projects/proj-b%2Fkeys%2Fkb",
		"/v1/projects/proj-b/keys%2fkb",
		"/v1/projects/proj-a/..%5Cproj-b/keys/kb",
		"/v1/projects/proj-a/..\\proj-b/keys/kb",
		"/v1/projects/proj-b/keys/%6bb", // an encoded letter is not decoded into a route either
		"http://jwtgate.test/v1/projects/proj-a/../proj-b/keys/kb",
	} {
		for _, method := range []string{"DELETE", "GET", "PATCH"} {
			resp, body := mustRaw(t, addr, rawRequest(method, target, auth...))
			mustInvalidRequest(t, resp, body, method+" "+target)
		}
	}
	// Nothing acted on another path: both keys are still there.
	for _, p := range []string{"/v1/projects/proj-a/keys/ka", "/v1/projects/proj-b/keys/kb"} {
		if r := ts.adminDo("GET", p, nil); r.Status != 200 {
			t.Errorf("GET %s after the attempts: %d", p, r.Status)
		}
	}
	// Paths are checked before the admin token: a bad path is 400 without it.
	resp, body := mustRaw(t, addr, rawRequest("GET", "/v1/projects/proj-a/../proj-b/keys"))
	mustInvalidRequest(t, resp, body, "unauthenticated dot segment")
	// The plain path still works.
	if r := ts.adminDo("DELETE", "/v1/projects/proj-b/keys/kb", nil); r.Status != 204 {
		t.Errorf("plain delete: %d %s", r.Status, r.Body)
	}
}

// Issue 9 item 1, verify listener: no route is reached through a dot
// segment, an empty segment or an encoded separator.
func TestVerifyRawPathDotSegments(t *testing.T) {
	ts := startServer(t, Config{})
	ts.addKey("myapp", enginetest.Key("rsa2048-a"), "k1", "")
	addr := ts.srv.Addr()
	for _, target := range []string{
		"/v1/projects/other/../myapp/jwks.json",
		"/v1/projects/myapp/./jwks.json",
		"/v1/projects//myapp/jwks.json",
		"/v1/projects/myapp%2Fjwks.json",
		"/v1/projects/%6dyapp/jwks.json",
		"/v1/./verify",
		"/v1/x/../verify",
		"/v1/%2e%2e/v1/verify",
		"/v1%2Fverify",
		"/x/../healthz",
		"/readyz/",
		"/healthz/.",
		"/v1\\verify",
	} {
		resp, body := mustRaw(t, addr, rawRequest("GET", target))
		mustInvalidRequest(t, resp, body, "GET "+target)
	}
	for target, want := range map[string]int{
		"/v1/projects/myapp/jwks.json": 200,
		"/healthz":                     200,
		"/readyz":                      200,
		"/":                            404,
		"/v1/projects/myapp":           404,
	} {
		resp, body := mustRaw(t, addr, rawRequest("GET", target))
		if resp.StatusCode != want {
			t.Errorf("GET %s: %d %s, want %d", target, resp.StatusCode, body, want)
		}
	}
}

// Issue 9 item 2: a kid of "." or ".." was accepted, verified tokens, and
// could then never be read, changed or deleted (the router cleaned it
// away). Registration refuses them now, in "kid" and in a JWK's "kid".
func TestAdminKIDDotRefused(t *testing.T) {
	ts := startServer(t, Config{})
	a := enginetest.Key("rsa2048-a")
	pemKey := string(enginetest.PublicPEM(&a.PublicKey))
	jwk := engine.JWKOf(&a.PublicKey, "")
	for _, kid := range []string{".", ".."} {
		r := ts.adminDo("POST", "/v1/projects/myapp/keys", map[string]any{"public_key": pemKey, "kid": kid})
		if r.Status != 400 || r.JSON(t)["error"] != "invalid_kid" {
			t.Errorf("kid %q: %d %s", kid, r.Status, r.Body)
		}
		j := map[string]any{"kty": "RSA", "n": jwk.N, "e": jwk.E, "kid": kid}
		r = ts.adminDo("POST", "/v1/projects/myapp/keys", map[string]any{"jwk": j})
		if r.Status != 400 {
			t.Errorf("jwk kid %q: %d %s", kid, r.Status, r.Body)
		}
	}
	if r := ts.adminDo("GET", "/v1/projects/myapp/keys", nil); r.Status != 200 || contains(string(r.Body), `"kid"`) {
		t.Errorf("keys after refused registrations: %d %s", r.Status, r.Body)
	}
	// Dots inside a kid are still fine.
	ts.addKey("myapp", a, "k.1..x", "")
	mustOK(t, ts.verify(token(a, "k.1..x", "myapp", now(), 300, nil)))
}

// Issue 9 item 2: a key stored as "." or ".." by an older version stays
// addressable, through /v1/projects/{project}/key?kid=, so that it can be
// read, deactivated and removed; until then it keeps verifying.
func TestAdminLegacyDotKIDAddressable(t *testing.T) {
	store := engine.NewMemoryStore()
	a := enginetest.Key("rsa2048-a")
	for _, kid := range []string{".", ".."} {
		k := &engine.Key{KID: kid, Project: "myapp", Public: &a.PublicKey, Status: engine.StatusActive, CreatedAt: time.Now(), UpdatedAt: time.Now()}
		if err := store.Create(context.Background(), k); err != nil {
			t.Fatal(err)
		}
	}
	ts := startServer(t, Config{Store: store})
	for _, kid := range []string{".", ".."} {
		q := "/v1/projects/myapp/key?kid=" + url.QueryEscape(kid)
		mustOK(t, ts.verify(token(a, kid, "myapp", now(), 300, nil)))
		if r := ts.adminDo("GET", q, nil); r.Status != 200 || r.JSON(t)["kid"] != kid {
			t.Fatalf("GET %s: %d %s", q, r.Status, r.Body)
		}
		if r := ts.adminDo("GET", "/v1/projects/other/key?kid="+url.QueryEscape(kid), nil); r.Status != 404 {
			t.Errorf("GET in another project: %d %s", r.Status, r.Body)
		}
		// The guardrail guards these kids too; force passes it.
		if r := ts.adminDo("PATCH", q, map[string]any{"status": "inactive"}); r.Status != 409 || r.JSON(t)["error"] != "key_in_use" {
			t.Fatalf("PATCH %s without force: %d %s", q, r.Status, r.Body)
		}
		if r := ts.adminDo("PATCH", q+"&force=true", map[string]any{"status": "inactive"}); r.Status != 200 || r.JSON(t)["status"] != "inactive" {
			t.Fatalf("PATCH %s: %d %s", q, r.Status, r.Body)
		}
		mustCode(t, ts.verify(token(a, kid, "myapp", now(), 300, nil)), "key_inactive")
		if r := ts.adminDo("DELETE", q, nil); r.Status != 204 {
			t.Fatalf("DELETE %s: %d %s", q, r.Status, r.Body)
		}
		mustCode(t, ts.verify(token(a, kid, "myapp", now(), 300, nil)), "unknown_kid")
		if r := ts.adminDo("GET", q, nil); r.Status != 404 {
			t.Errorf("GET after delete: %d %s", r.Status, r.Body)
		}
	}
	// The query form names exactly one kid.
	for _, q := range []string{"", "?kid=", "?kid=a&kid=b", "?other=1"} {
		if r := ts.adminDo("DELETE", "/v1/projects/myapp/key"+q, nil); r.Status != 400 || r.JSON(t)["error"] != "invalid_request" {
			t.Errorf("DELETE key%s: %d %s", q, r.Status, r.Body)
		}
	}
	// It works for any kid, and is no way around the path rules.
	ts.addKey("myapp", a, "k2", "")
	if r := ts.adminDo("GET", "/v1/projects/myapp/key?kid=k2", nil); r.Status != 200 {
		t.Errorf("GET key?kid=k2: %d %s", r.Status, r.Body)
	}
	if r := ts.adminDo("GET", "/v1/projects/myapp/key?kid=../keys", nil); r.Status != 404 {
		t.Errorf("GET key?kid=../keys: %d %s", r.Status, r.Body)
	}
	if r := ts.adminDo("POST", "/v1/projects/myapp/key?kid=k2", nil); r.Status != 405 {
		t.Errorf("POST key?kid=k2: %d %s", r.Status, r.Body)
	}
	if r := do(t, "GET", ts.admin+"/v1/projects/myapp/key?kid=k2", nil); r.Status != 401 {
		t.Errorf("without the admin token: %d", r.Status)
	}
}

// Issue 9 item 3: {"kid":""} made the server generate a kid; a kid that is
// given must match the pattern.
func TestAdminEmptyKIDRefused(t *testing.T) {
	ts := startServer(t, Config{})
	a := enginetest.Key("rsa2048-a")
	pemKey := string(enginetest.PublicPEM(&a.PublicKey))
	r := ts.adminDo("POST", "/v1/projects/myapp/keys", map[string]any{"public_key": pemKey, "kid": ""})
	if r.Status != 400 || r.JSON(t)["error"] != "invalid_kid" {
		t.Errorf(`{"kid":""}: %d %s`, r.Status, r.Body)
	}
	jwk := engine.JWKOf(&a.PublicKey, "")
	r = ts.adminDo("POST", "/v1/projects/myapp/keys", map[string]any{"jwk": map[string]any{"kty": "RSA", "n": jwk.N, "e": jwk.E, "kid": ""}})
	if r.Status != 400 {
		t.Errorf(`jwk {"kid":""}: %d %s`, r.Status, r.Body)
	}
	if r := ts.adminDo("GET", "/v1/projects/myapp/keys", nil); contains(string(r.Body), `"kid"`) {
		t.Errorf("a key was registered: %s", r.Body)
	}
	// Leaving kid out still makes one.
	r = ts.adminDo("POST", "/v1/projects/myapp/keys", map[string]any{"public_key": pemKey})
	if r.Status != 201 || !engine.ValidKID(r.JSON(t)["kid"].(string)) {
		t.Errorf("no kid: %d %s", r.Status, r.Body)
	}
}

// Issue 9 item 4: encoding/json matches member names case-insensitively
// (the last one wins), so {"status":"inactive","STATUS":"active"} left the
// key active with a 200, and {"Status":"inactive"} was obeyed. Names must
// match exactly; a case variant of a known field, and any duplicate, is
// 400 invalid_json.
func TestAdminJSONMemberNamesExact(t *testing.T) {
	ts := startServer(t, Config{})
	a := enginetest.Key("rsa2048-a")
	ts.addKey("myapp", a, "k1", "orig")
	for _, body := range []string{
		`{"status":"inactive","STATUS":"active"}`,
		`{"STATUS":"active","status":"inactive"}`,
		`{"Status":"inactive"}`,
		`{"status":"inactive","Label":"x"}`,
		`{"LABEL":"x"}`,
		`{"status":"inactive","status":"active"}`,
		`{"st\u0061tus":"inactive","status":"active"}`,
		`{"\u0053tatus":"inactive"}`,
	} {
		r := ts.adminDo("PATCH", "/v1/projects/myapp/keys/k1", body)
		if r.Status != 400 || r.JSON(t)["error"] != "invalid_json" {
			t.Errorf("PATCH %s: %d %s", body, r.Status, r.Body)
		}
	}
	// Nothing changed.
	if r := ts.adminDo("GET", "/v1/projects/myapp/keys/k1", nil); r.JSON(t)["status"] != "active" || r.JSON(t)["label"] != "orig" {
		t.Errorf("key changed by a refused PATCH: %s", r.Body)
	}
	mustOK(t, ts.verify(token(a, "k1", "myapp", now(), 300, nil)))

	b := enginetest.Key("rsa2048-b")
	pemKey := enginetest.MustJSON(string(enginetest.PublicPEM(&b.PublicKey)))
	for _, body := range []string{
		`{"Public_Key":` + string(pemKey) + `}`,
		`{"public_key":` + string(pemKey) + `,"KID":"k9"}`,
		`{"public_key":` + string(pemKey) + `,"kid":"k9","Kid":"k8"}`,
	} {
		r := ts.adminDo("POST", "/v1/projects/myapp/keys", body)
		if r.Status != 400 || r.JSON(t)["error"] != "invalid_json" {
			t.Errorf("POST %.60s: %d %s", body, r.Status, r.Body)
		}
	}
	// Exact names still work; an escaped exact name is that name.
	// (force: k1 verified a token above; the rotation guardrail is not what
	// this tests.)
	if r := ts.adminDo("PATCH", "/v1/projects/myapp/keys/k1?force=true", `{"st\u0061tus":"inactive"}`); r.Status != 200 || r.JSON(t)["status"] != "inactive" {
		t.Errorf("exact PATCH: %d %s", r.Status, r.Body)
	}
	if r := ts.adminDo("POST", "/v1/projects/myapp/keys", `{"public_key":`+string(pemKey)+`,"kid":"k9"}`); r.Status != 201 {
		t.Errorf("exact POST: %d %s", r.Status, r.Body)
	}
}

// healthStore reports itself unhealthy with a detail that names the
// database, as the PostgreSQL store does when its connection is lost.
type healthStore struct {
	*engine.MemoryStore
	ok     atomic.Bool
	detail string
}

func (h *healthStore) Health() (bool, string) { return h.ok.Load(), h.detail }

// Issue 9 item 12: the public /readyz printed the store's error (user,
// database, host:port). The verify listener says only "ready", "degraded"
// or "not ready"; the cause goes to the log and to the admin listener's
// GET /v1/status.
func TestReadyzPublicSaysOnlyState(t *testing.T) {
	const secret = `store disconnected: failed to connect to user=jwtgate database=keys host=db.internal:5432: password authentication failed`
	hs := &healthStore{MemoryStore: engine.NewMemoryStore(), detail: secret}
	ts := startServer(t, Config{Store: hs, ShutdownDelay: time.Second})
	hs.ok.Store(true)
	if r := do(t, "GET", ts.base+"/readyz", nil); r.Status != 200 || string(r.Body) != "ready\n" {
		t.Fatalf("healthy readyz: %d %q", r.Status, r.Body)
	}
	st := ts.adminDo("GET", "/v1/status", nil)
	if st.Status != 200 || st.JSON(t)["state"] != "ready" || st.JSON(t)["ready"] != true {
		t.Fatalf("healthy status: %d %s", st.Status, st.Body)
	}

	hs.ok.Store(false)
	r := do(t, "GET", ts.base+"/readyz", nil)
	if r.Status != 200 || string(r.Body) != "degraded\n" {
		t.Errorf("degraded readyz: %d %q, want 200 %q", r.Status, r.Body, "degraded\n")
	}
	for _, leak := range []string{"db.internal", "5432", "user=", "database=", "password"} {
		if contains(string(r.Body), leak) {
			t.Errorf("public /readyz shows %q: %q", leak, r.Body)
		}
	}
	st = ts.adminDo("GET", "/v1/status", nil)
	if m := st.JSON(t); st.Status != 200 || m["state"] != "degraded" || m["ready"] != true || m["store"].(map[string]any)["detail"] != secret || m["store"].(map[string]any)["healthy"] != false {
		t.Errorf("degraded status: %d %s", st.Status, st.Body)
	}
	if !contains(ts.logs.String(), "db.internal:5432") {
		t.Errorf("the cause is not in the log:\n%s", ts.logs.String())
	}
	if r := do(t, "GET", ts.admin+"/v1/status", nil); r.Status != 401 {
		t.Errorf("status without the admin token: %d", r.Status)
	}

	// Draining: "not ready" in public, "draining" on the admin listener.
	done := make(chan error, 1)
	go func() { done <- ts.srv.Shutdown(context.Background()) }()
	waitDraining(t, ts.srv)
	if r := do(t, "GET", ts.base+"/readyz", nil); r.Status != 503 || string(r.Body) != "not ready\n" {
		t.Errorf("draining readyz: %d %q", r.Status, r.Body)
	}
	if st := ts.adminDo("GET", "/v1/status", nil); st.Status != 503 || st.JSON(t)["state"] != "draining" || st.JSON(t)["ready"] != false {
		t.Errorf("draining status: %d %s", st.Status, st.Body)
	}
	<-done
}

// metricSeries counts the series lines of a /metrics body.
func metricSeries(t *testing.T, ts *testServer) (int, string) {
	t.Helper()
	r := do(t, "GET", ts.admin+"/metrics", nil)
	if r.Status != 200 {
		t.Fatalf("metrics: %d", r.Status)
	}
	n := 0
	for _, l := range strings.Split(string(r.Body), "\n") {
		if l != "" && !strings.HasPrefix(l, "#") {
			n++
		}
	}
	return n, string(r.Body)
}

// Issue 9 item 6: /metrics labels took the raw HTTP method (300 junk
// methods made 302 series; 15 KB methods made /metrics 45 MB). Every label
// value comes from a fixed set: a flood of junk methods, paths and
// projects leaves the number of series unchanged.
func TestMetricsLabelsBoundedUnderJunk(t *testing.T) {
	ts := startServer(t, Config{})
	a := enginetest.Key("rsa2048-a")
	ts.addKey("myapp", a, "k1", "")
	good := token(a, "k1", "myapp", now(), 300, nil)
	auth := []string{"Authorization", "Bearer " + testAdminToken}
	flood := func(round int) {
		for i := range 60 {
			junk := fmt.Sprintf("J%dX%03d", round, i)
			method := strings.Repeat(junk, 1+i%5)
			for _, h := range [][]string{nil, auth} {
				for _, p := range []string{"/v1/projects/" + strings.ToLower(junk) + "/keys", "/v1/projects/myapp/keys/" + junk, "/" + junk, "/metrics", "/v1/status", "/v1/" + junk + "/../x"} {
					mustRaw(t, ts.srv.AdminAddr(), rawRequest(method, p, h...))
					mustRaw(t, ts.srv.AdminAddr(), rawRequest("GET", p, h...))
				}
			}
			for _, p := range []string{"/v1/verify?project=" + strings.ToLower(junk), "/v1/verify/" + junk, "/v1/projects/" + strings.ToLower(junk) + "/jwks.json", "/" + junk} {
				mustRaw(t, ts.srv.Addr(), rawRequest(method, p, "Authorization", "Bearer "+good))
			}
		}
	}
	flood(1)
	n1, _ := metricSeries(t, ts)
	flood(2)
	n2, body := metricSeries(t, ts)
	if n1 != n2 {
		t.Errorf("series after the first flood: %d, after a second one with other junk: %d", n1, n2)
	}
	if contains(body, "J1X") || contains(body, "J2X") || contains(strings.ToLower(body), "j2x") {
		t.Errorf("junk from a request reached a label:\n%s", body)
	}
	if len(body) > 64<<10 {
		t.Errorf("/metrics is %d bytes", len(body))
	}
	if !contains(body, `jwtgate_admin_requests_total{method="other",route="other",status="404"}`) {
		t.Errorf("junk methods are not counted as other:\n%s", body)
	}
}
