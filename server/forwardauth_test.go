package server

import (
	"strings"
	"testing"

	"github.com/jwtgate/jwtgate/engine/enginetest"
)

// Issue 11 item 1: /v1/verify and every path below /v1/verify/ answer any
// method with the same verdict, as Envoy's HTTP ext_authz (path_prefix: it
// keeps the method and appends the original path) and Traefik/Caddy
// forward-auth (GET with X-Forwarded-Method/-Uri) call it.
func TestForwardAuthAnyMethodAnyPath(t *testing.T) {
	ts := startServer(t, Config{ClaimHeaders: map[string]string{"groupRef": "X-Group-Ref"}})
	a := enginetest.Key("rsa2048-a")
	ts.addKey("myapp", a, "k1", "")
	good := token(a, "k1", "myapp", now(), 300, map[string]any{"sub": "alice", "groupRef": "g1"})
	expired := token(a, "k1", "myapp", now()-1000, 300, nil)
	addr := ts.srv.Addr()
	methods := []string{"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "TRACE", "PURGE", "PROPFIND"}
	paths := []string{
		"/v1/verify", "/v1/verify/", "/v1/verify/api/orders", "/v1/verify/api/orders/42?x=1&y=2",
		"/v1/verify/api/../admin", "/v1/verify//double//slash", "/v1/verify/a%2Fb/%2e%2e",
		"/v1/verify?project=myapp", "/v1/verify/api/orders?project=myapp",
	}
	for _, m := range methods {
		for _, p := range paths {
			resp, body := mustRaw(t, addr, rawRequest(m, p, "Authorization", "Bearer "+good))
			if resp.StatusCode != 200 || resp.Header.Get("X-Jwt-Project") != "myapp" || resp.Header.Get("X-Jwt-Kid") != "k1" ||
				resp.Header.Get("X-Jwt-Subject") != "alice" || resp.Header.Get("X-Group-Ref") != "g1" {
				t.Errorf("%s %s valid: %d %v %s", m, p, resp.StatusCode, resp.Header, body)
			}
			if m != "HEAD" && !strings.Contains(string(body), `"valid":true`) {
				t.Errorf("%s %s valid: body %s", m, p, body)
			}
			resp, body = mustRaw(t, addr, rawRequest(m, p, "Authorization", "Bearer "+expired))
			if resp.StatusCode != 401 || resp.Header.Get("WWW-Authenticate") != `Bearer error="invalid_token", error_description="expired"` {
				t.Errorf("%s %s expired: %d %v %s", m, p, resp.StatusCode, resp.Header, body)
			}
			resp, body = mustRaw(t, addr, rawRequest(m, p))
			if resp.StatusCode != 401 || resp.Header.Get("WWW-Authenticate") != `Bearer realm="jwtgate"` {
				t.Errorf("%s %s no token: %d %s", m, p, resp.StatusCode, body)
			}
		}
	}
	// Traefik forwardAuth / Caddy forward_auth: GET with the original
	// request in X-Forwarded-* headers; they change nothing.
	resp, body := mustRaw(t, addr, rawRequest("GET", "/v1/verify", "Authorization", "Bearer "+good,
		"X-Forwarded-Method", "DELETE", "X-Forwarded-Uri", "/api/orders/42?x=1", "X-Forwarded-Host", "api.example", "X-Forwarded-Proto", "https"))
	if resp.StatusCode != 200 || resp.Header.Get("X-Jwt-Subject") != "alice" {
		t.Errorf("forwardAuth shape: %d %s", resp.StatusCode, body)
	}
	// A path that merely starts like the endpoint is not it.
	for _, p := range []string{"/v1/verifyx", "/v1/verify.json", "/v1/verif"} {
		resp, body := mustRaw(t, addr, rawRequest("GET", p, "Authorization", "Bearer "+good))
		if resp.StatusCode != 404 {
			t.Errorf("GET %s: %d %s, want 404", p, resp.StatusCode, body)
		}
	}
}

// Issue 11 item 1: a proxy can name the required project in a header
// (X-Jwtgate-Project) with the same rules as ?project=.
func TestForwardAuthProjectHeader(t *testing.T) {
	ts := startServer(t, Config{})
	a := enginetest.Key("rsa2048-a")
	ts.addKey("myapp", a, "k1", "")
	good := token(a, "k1", "myapp", now(), 300, nil)
	bearer := []string{"Authorization", "Bearer " + good}
	if r := do(t, "DELETE", ts.base+"/v1/verify/api/x", nil, append(bearer, "X-Jwtgate-Project", "myapp")...); r.Status != 200 {
		t.Errorf("matching header: %d %s", r.Status, r.Body)
	}
	mustCode(t, do(t, "PUT", ts.base+"/v1/verify/api/x", nil, append(bearer, "X-Jwtgate-Project", "other")...), "audience_mismatch")
	// Header and query both given: the token must satisfy both.
	mustCode(t, do(t, "GET", ts.base+"/v1/verify?project=myapp", nil, append(bearer, "X-Jwtgate-Project", "other")...), "audience_mismatch")
	mustCode(t, do(t, "GET", ts.base+"/v1/verify?project=other", nil, append(bearer, "X-Jwtgate-Project", "myapp")...), "audience_mismatch")
	if r := do(t, "GET", ts.base+"/v1/verify?project=myapp", nil, append(bearer, "X-Jwtgate-Project", "myapp")...); r.Status != 200 {
		t.Errorf("header and query agree: %d %s", r.Status, r.Body)
	}
	for name, hdrs := range map[string][]string{
		"empty":    {"X-Jwtgate-Project", ""},
		"repeated": {"X-Jwtgate-Project", "myapp", "X-Jwtgate-Project", "myapp"},
		"invalid":  {"X-Jwtgate-Project", "My App"},
	} {
		resp, body := mustRaw(t, ts.srv.Addr(), rawRequest("GET", "/v1/verify", append(bearer, hdrs...)...))
		mustInvalidRequest(t, resp, body, "header "+name)
	}
}

// Issue 9 item 5: ?project= given twice used the first, given empty meant
// "any project". Both fail open behind a proxy that appends or templates
// parameters: they are 400 invalid_request.
func TestVerifyProjectQueryRepeatedOrEmpty(t *testing.T) {
	ts := startServer(t, Config{})
	a := enginetest.Key("rsa2048-a")
	ts.addKey("myapp", a, "k1", "")
	good := token(a, "k1", "myapp", now(), 300, nil)
	for _, q := range []string{
		"?project=myapp&project=other", "?project=other&project=myapp", "?project=myapp&project=myapp",
		"?project=", "?project", "?x=1&project=&y=2", "?project=MyApp", "?project=my%20app", "?proj%65ct=myapp&project=myapp",
	} {
		for _, p := range []string{"/v1/verify", "/v1/verify/api"} {
			resp, body := mustRaw(t, ts.srv.Addr(), rawRequest("GET", p+q, "Authorization", "Bearer "+good))
			mustInvalidRequest(t, resp, body, p+q)
		}
	}
	if r := do(t, "GET", ts.base+"/v1/verify?project=myapp&other=1", nil, "Authorization", "Bearer "+good); r.Status != 200 {
		t.Errorf("one project: %d %s", r.Status, r.Body)
	}
	mustCode(t, do(t, "GET", ts.base+"/v1/verify?project=other", nil, "Authorization", "Bearer "+good), "audience_mismatch")
}
