// Package docs_test checks docs/openapi.yaml against the real server, so
// that the reference cannot drift from what jwtgate does.
//
// HOW TO EXTEND (read this before adding a route or a status):
//
//  1. Add the route to docs/openapi.yaml, with `x-listener: verify` or
//     `x-listener: admin` (or a list of both) on its path item, and every
//     status it answers under `responses`. Document it in docs/API.md too.
//  2. Add cases to apiCases below: one per documented status of each
//     operation (method + path template). A case names its request (method,
//     the path as sent, headers, body), the status it expects, and
//     optionally a check of the body beyond the schema.
//  3. Run `go test ./docs/`. TestOpenAPIMatchesServer sends every case to a
//     real server on loopback, validates the request (for 2xx answers) and
//     the response (status, headers, body) against the spec with
//     libopenapi-validator, and then fails if any (path, method, status) of
//     the spec was not exercised by a case, or if a case hit a route or
//     status that the spec does not document. A status that cannot be
//     produced from a test goes in notExercised with the reason.
//
// Servers: cases run against "main" (memory store, keys registered by
// setup), "broken" (a store whose every read fails: 503s) or "draining"
// (shutting down: /readyz 503). Add a server kind in startServers if a new
// route needs another state.
package docs_test

import (
	"bytes"
	"context"
	"crypto/rsa"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jwtgate/jwtgate/engine"
	"github.com/jwtgate/jwtgate/engine/enginetest"
	"github.com/jwtgate/jwtgate/internal/apitest"
	"github.com/jwtgate/jwtgate/server"
	"github.com/jwtgate/jwtgate/server/servertest"
	"github.com/jwtgate/jwtgate/store/boltstore"
	"github.com/pb33f/libopenapi"
	validator "github.com/pb33f/libopenapi-validator"
	verrors "github.com/pb33f/libopenapi-validator/errors"
	"github.com/pb33f/libopenapi-validator/paths"
	v3 "github.com/pb33f/libopenapi/datamodel/high/v3"
)

const adminToken = "docs-test-admin-token-0123456789"

// apiCase is one request to the real server and what it must get back.
type apiCase struct {
	name     string
	server   string // "main" (default), "broken", "draining"
	listener string // "verify" or "admin"; empty: every listener the spec names for the path
	method   string
	path     string // as sent, with the query
	admin    bool   // send the admin bearer token
	headers  []string
	body     string
	status   int
	check    func(t *testing.T, r apitest.Response) // optional, beyond the schema
}

// Fixtures the cases use (registered by setup on the "main" server).
const (
	project   = "acme"
	kidActive = "acme-1"
	kidOff    = "acme-off"
	kidNew    = "acme-new"
)

func token(priv *rsa.PrivateKey, kid string, mutate func(c map[string]any)) string {
	now := time.Now().Unix()
	c := enginetest.Claims(project, now, 300)
	if mutate != nil {
		mutate(c)
	}
	return enginetest.SignRS256(priv, enginetest.Header(kid), c)
}

func bearer(tok string) []string { return []string{"Authorization", "Bearer " + tok} }

func wantCode(code string) func(*testing.T, apitest.Response) {
	return func(t *testing.T, r apitest.Response) {
		t.Helper()
		if got := r.JSON(t)["error"]; got != code {
			t.Errorf("error = %v, want %s (body %s)", got, code, r.Body)
		}
	}
}

func wantVerifyCode(code string) func(*testing.T, apitest.Response) {
	return func(t *testing.T, r apitest.Response) {
		t.Helper()
		wantCode(code)(t, r)
		want := `Bearer error="invalid_token", error_description="` + code + `"`
		if code == "missing_token" {
			want = `Bearer realm="jwtgate"`
		}
		if got := r.Header.Get("WWW-Authenticate"); got != want {
			t.Errorf("WWW-Authenticate = %q, want %q", got, want)
		}
	}
}

func apiCases() []apiCase {
	a := enginetest.Key("rsa2048-a")
	b := enginetest.Key("rsa2048-b")
	c := enginetest.Key("rsa2048-c")
	valid := token(a, kidActive, nil)
	keyPath := "/v1/projects/" + project + "/keys"
	return []apiCase{
		// ---- verify listener: /v1/verify
		{name: "valid", method: "GET", path: "/v1/verify", headers: bearer(valid), status: 200,
			check: func(t *testing.T, r apitest.Response) {
				if r.Header.Get("X-Jwt-Kid") != kidActive || r.Header.Get("X-Jwt-Project") != project || r.Header.Get("X-Jwt-Subject") != "user-1" {
					t.Errorf("identity headers: %v", r.Header)
				}
			}},
		{name: "valid for ?project=", method: "GET", path: "/v1/verify?project=" + project, headers: bearer(valid), status: 200},
		{name: "valid POST", method: "POST", path: "/v1/verify", headers: bearer(valid), body: "ignored", status: 200},
		{name: "valid HEAD", method: "HEAD", path: "/v1/verify", headers: bearer(valid), status: 200},
		{name: "missing_token", method: "GET", path: "/v1/verify", status: 401, check: wantVerifyCode("missing_token")},
		{name: "missing_token HEAD", method: "HEAD", path: "/v1/verify", status: 401},
		{name: "missing_token POST", method: "POST", path: "/v1/verify", status: 401, check: wantVerifyCode("missing_token")},
		{name: "token_too_large", method: "GET", path: "/v1/verify", headers: bearer(strings.Repeat("a", engine.DefaultMaxTokenBytes)), status: 401, check: wantVerifyCode("token_too_large")},
		{name: "malformed", method: "GET", path: "/v1/verify", headers: bearer("a.b"), status: 401, check: wantVerifyCode("malformed")},
		{name: "unsupported_algorithm", method: "GET", path: "/v1/verify",
			headers: bearer(enginetest.SignHS256([]byte("secret"), map[string]any{"alg": "HS256", "kid": kidActive}, enginetest.Claims(project, time.Now().Unix(), 60))),
			status:  401, check: wantVerifyCode("unsupported_algorithm")},
		{name: "missing_kid", method: "GET", path: "/v1/verify",
			headers: bearer(enginetest.SignRS256(a, map[string]any{"alg": "RS256"}, enginetest.Claims(project, time.Now().Unix(), 60))),
			status:  401, check: wantVerifyCode("missing_kid")},
		{name: "unknown_kid", method: "GET", path: "/v1/verify", headers: bearer(token(a, "nobody", nil)), status: 401, check: wantVerifyCode("unknown_kid")},
		{name: "key_inactive", method: "GET", path: "/v1/verify", headers: bearer(token(b, kidOff, nil)), status: 401, check: wantVerifyCode("key_inactive")},
		{name: "expired", method: "GET", path: "/v1/verify", headers: bearer(token(a, kidActive, func(c map[string]any) {
			c["iat"], c["exp"] = time.Now().Unix()-600, time.Now().Unix()-300
		})), status: 401, check: wantVerifyCode("expired")},
		{name: "ttl_exceeded", method: "GET", path: "/v1/verify", headers: bearer(token(a, kidActive, func(c map[string]any) {
			c["exp"] = time.Now().Unix() + 3600
		})), status: 401, check: wantVerifyCode("ttl_exceeded")},
		{name: "audience_mismatch", method: "GET", path: "/v1/verify?project=other", headers: bearer(valid), status: 401, check: wantVerifyCode("audience_mismatch")},
		{name: "invalid_signature", method: "GET", path: "/v1/verify", headers: bearer(token(c, kidActive, nil)), status: 401, check: wantVerifyCode("invalid_signature")},
		{name: "verify body too large", method: "POST", path: "/v1/verify", headers: bearer(valid), body: strings.Repeat("x", server.MaxVerifyBodyBytes+1), status: 413, check: wantCode("body_too_large")},
		{name: "verify headers too large", method: "GET", path: "/v1/verify", headers: []string{"X-Pad", strings.Repeat("p", server.DefaultMaxHeaderBytes+1)}, status: 431, check: wantCode("header_too_large")},
		{name: "project given twice", method: "GET", path: "/v1/verify?project=acme&project=acme", headers: bearer(valid), status: 400, check: wantCode("invalid_request")},
		{name: "valid for X-Jwtgate-Project", method: "GET", path: "/v1/verify", headers: append(bearer(valid), "X-Jwtgate-Project", project), status: 200},
		{name: "valid PUT", method: "PUT", path: "/v1/verify", headers: bearer(valid), status: 200},
		{name: "missing_token PUT", method: "PUT", path: "/v1/verify", status: 401, check: wantVerifyCode("missing_token")},
		{name: "valid PATCH", method: "PATCH", path: "/v1/verify", headers: bearer(valid), status: 200},
		{name: "expired PATCH", method: "PATCH", path: "/v1/verify", headers: bearer(token(a, kidActive, func(c map[string]any) {
			c["iat"], c["exp"] = time.Now().Unix()-600, time.Now().Unix()-300
		})), status: 401, check: wantVerifyCode("expired")},
		{name: "valid DELETE", method: "DELETE", path: "/v1/verify", headers: bearer(valid), status: 200},
		{name: "missing_token DELETE", method: "DELETE", path: "/v1/verify", status: 401},
		{name: "forwarded valid", method: "GET", path: "/v1/verify/orders", headers: bearer(valid), status: 200},
		{name: "forwarded missing_token", method: "GET", path: "/v1/verify/orders", status: 401, check: wantVerifyCode("missing_token")},
		{name: "forwarded valid POST", method: "POST", path: "/v1/verify/api", headers: bearer(valid), status: 200},
		{name: "forwarded invalid POST", method: "POST", path: "/v1/verify/api", headers: bearer(token(c, kidActive, nil)), status: 401, check: wantVerifyCode("invalid_signature")},
		{name: "verify store down", server: "broken", method: "GET", path: "/v1/verify", headers: bearer(valid), status: 503, check: wantCode("unavailable")},

		// ---- verify listener: JWKS, health
		{name: "jwks", method: "GET", path: "/v1/projects/" + project + "/jwks.json", status: 200,
			check: func(t *testing.T, r apitest.Response) {
				if !bytes.Contains(r.Body, []byte(`"kid":"`+kidActive+`"`)) || bytes.Contains(r.Body, []byte(kidOff)) {
					t.Errorf("JWKS must list the active key only: %s", r.Body)
				}
			}},
		{name: "jwks unknown project", method: "GET", path: "/v1/projects/nobody/jwks.json", status: 404, check: wantCode("not_found")},
		{name: "jwks store down", server: "broken", method: "GET", path: "/v1/projects/" + project + "/jwks.json", status: 503, check: wantCode("unavailable")},
		{name: "jwks POST", method: "POST", path: "/v1/projects/" + project + "/jwks.json", status: 405,
			check: func(t *testing.T, r apitest.Response) {
				if r.Header.Get("Allow") != "GET, HEAD" {
					t.Errorf("Allow = %q", r.Header.Get("Allow"))
				}
			}},
		{name: "healthz", method: "GET", path: "/healthz", status: 200},
		{name: "healthz POST", method: "POST", path: "/healthz", status: 405},
		{name: "readyz", method: "GET", path: "/readyz", status: 200},
		{name: "readyz draining", server: "draining", method: "GET", path: "/readyz", status: 503},
		{name: "status", method: "GET", path: "/v1/status", admin: true, status: 200},
		{name: "status no token", method: "GET", path: "/v1/status", status: 401},
		{name: "status draining", server: "draining", method: "GET", path: "/v1/status", admin: true, status: 503},
		{name: "key by query", method: "GET", path: "/v1/projects/" + project + "/key?kid=" + kidActive, admin: true, status: 200},
		{name: "key by query twice", method: "GET", path: "/v1/projects/" + project + "/key?kid=a&kid=b", admin: true, status: 400, check: wantCode("invalid_request")},
		{name: "key by query unknown", method: "GET", path: "/v1/projects/" + project + "/key?kid=nope", admin: true, status: 404},

		// ---- admin listener: keys
		{name: "list", method: "GET", path: keyPath, admin: true, status: 200},
		{name: "list bad project", method: "GET", path: "/v1/projects/Bad!/keys", admin: true, status: 400, check: wantCode("invalid_project")},
		{name: "list no token", method: "GET", path: keyPath, status: 401, check: wantCode("unauthorized")},
		{name: "add PEM", method: "POST", path: keyPath, admin: true, status: 201,
			body: string(enginetest.MustJSON(map[string]any{"public_key": string(enginetest.PublicPEM(&c.PublicKey)), "label": "new", "kid": kidNew}))},
		{name: "add kid taken", method: "POST", path: keyPath, admin: true, status: 409, check: wantCode("kid_taken"),
			body: string(enginetest.MustJSON(map[string]any{"public_key": string(enginetest.PublicPEM(&c.PublicKey)), "kid": kidNew}))},
		{name: "add private key", method: "POST", path: keyPath, admin: true, status: 400, check: wantCode("private_key"),
			body: string(enginetest.MustJSON(map[string]any{"public_key": string(enginetest.PrivatePEM(c))}))},
		{name: "add bad token", method: "POST", path: keyPath, headers: []string{"Authorization", "Bearer wrong-token-wrong-token"}, status: 401, body: `{}`},
		{name: "add too large", method: "POST", path: keyPath, admin: true, status: 413, check: wantCode("body_too_large"),
			body: `{"label":"` + strings.Repeat("a", server.MaxAdminBodyBytes) + `"}`},
		{name: "keys PUT", method: "PUT", path: keyPath, admin: true, status: 405},
		{name: "get", method: "GET", path: keyPath + "/" + kidNew, admin: true, status: 200},
		{name: "get no token", method: "GET", path: keyPath + "/" + kidNew, status: 401},
		{name: "get other project", method: "GET", path: "/v1/projects/other/keys/" + kidNew, admin: true, status: 404, check: wantCode("not_found")},
		{name: "update", method: "PATCH", path: keyPath + "/" + kidNew, admin: true, body: `{"label":"renamed","status":"inactive"}`, status: 200,
			check: func(t *testing.T, r apitest.Response) {
				if m := r.JSON(t); m["status"] != "inactive" || m["label"] != "renamed" {
					t.Errorf("update not applied: %s", r.Body)
				}
			}},
		{name: "update bad status", method: "PATCH", path: keyPath + "/" + kidNew, admin: true, body: `{"status":"paused"}`, status: 400, check: wantCode("invalid_status")},
		{name: "update no token", method: "PATCH", path: keyPath + "/" + kidNew, body: `{}`, status: 401},
		{name: "update unknown", method: "PATCH", path: keyPath + "/nope", admin: true, body: `{"label":"x"}`, status: 404},
		{name: "key POST", method: "POST", path: keyPath + "/" + kidNew, admin: true, status: 405},
		{name: "delete", method: "DELETE", path: keyPath + "/" + kidNew, admin: true, status: 204},
		{name: "delete again", method: "DELETE", path: keyPath + "/" + kidNew, admin: true, status: 404, check: wantCode("not_found")},
		{name: "delete no token", method: "DELETE", path: keyPath + "/" + kidActive, status: 401},

		// ---- admin listener: key-pair generation
		{name: "generate", method: "POST", path: keyPath + ":generate", admin: true, status: 201, body: `{"label":"generated","kid":"acme-gen"}`,
			check: func(t *testing.T, r apitest.Response) {
				if m := r.JSON(t); m["kid"] != "acme-gen" || m["label"] != "generated" || r.Header.Get("Cache-Control") != "no-store" {
					t.Errorf("generated key: %s", r.Body)
				}
			}},
		{name: "generate no body", method: "POST", path: keyPath + ":generate", admin: true, status: 201},
		{name: "generate bad bits", method: "POST", path: keyPath + ":generate", admin: true, body: `{"bits":1024}`, status: 400, check: wantCode("invalid_bits")},
		{name: "generate no token", method: "POST", path: keyPath + ":generate", status: 401},
		{name: "generate kid taken", method: "POST", path: keyPath + ":generate", admin: true, body: `{"kid":"` + kidActive + `"}`, status: 409, check: wantCode("kid_taken")},
		{name: "generate too large", method: "POST", path: keyPath + ":generate", admin: true, status: 413,
			body: `{"label":"` + strings.Repeat("a", server.MaxAdminBodyBytes) + `"}`},
		{name: "generate GET", method: "GET", path: keyPath + ":generate", admin: true, status: 405},

		// ---- admin listener: scoped tokens, the rotation guardrail, the audit trail
		// (kidActive verified tokens in the cases above: it is in use.)
		{name: "scoped read: list", method: "GET", path: keyPath, headers: bearer(scoped.read), status: 200},
		{name: "scoped: other project", method: "GET", path: "/v1/projects/other/keys", headers: bearer(scoped.read), status: 403, check: wantCode("forbidden")},
		{name: "scoped read: add", method: "POST", path: keyPath, headers: bearer(scoped.read), status: 403, check: wantCode("forbidden"),
			body: string(enginetest.MustJSON(map[string]any{"public_key": string(enginetest.PublicPEM(&c.PublicKey))}))},
		{name: "scoped read: generate", method: "POST", path: keyPath + ":generate", headers: bearer(scoped.read), status: 403, check: wantCode("forbidden")},
		{name: "scoped: get in other project", method: "GET", path: "/v1/projects/other/keys/" + kidActive, headers: bearer(scoped.read), status: 403, check: wantCode("forbidden")},
		{name: "scoped read: patch", method: "PATCH", path: keyPath + "/" + kidActive, headers: bearer(scoped.read), body: `{"label":"x"}`, status: 403, check: wantCode("forbidden")},
		{name: "scoped read: delete", method: "DELETE", path: keyPath + "/" + kidActive, headers: bearer(scoped.read), status: 403, check: wantCode("forbidden")},
		{name: "deactivate in use", method: "PATCH", path: keyPath + "/" + kidActive, admin: true, body: `{"status":"inactive"}`, status: 409, check: wantCode("key_in_use")},
		{name: "delete in use", method: "DELETE", path: keyPath + "/" + kidActive, admin: true, status: 409, check: wantCode("key_in_use")},
		{name: "delete bad force", method: "DELETE", path: keyPath + "/" + kidActive + "?force=yes", admin: true, status: 400, check: wantCode("invalid_request")},
		{name: "deactivate with force", method: "PATCH", path: keyPath + "/" + kidActive + "?force=true", admin: true, body: `{"status":"inactive"}`, status: 200},
		{name: "tokens create", method: "POST", path: "/v1/tokens", admin: true, body: `{"project":"acme","scope":"write","label":"ci"}`, status: 201},
		{name: "tokens create bad scope", method: "POST", path: "/v1/tokens", admin: true, body: `{"project":"acme","scope":"all"}`, status: 400, check: wantCode("invalid_scope")},
		{name: "tokens create no token", method: "POST", path: "/v1/tokens", body: `{"project":"acme","scope":"read"}`, status: 401},
		{name: "tokens create scoped", method: "POST", path: "/v1/tokens", headers: bearer(scoped.read), body: `{"project":"acme","scope":"write"}`, status: 403, check: wantCode("forbidden")},
		{name: "tokens create too large", method: "POST", path: "/v1/tokens", admin: true, status: 413,
			body: `{"label":"` + strings.Repeat("a", server.MaxAdminBodyBytes) + `"}`},
		{name: "tokens list", method: "GET", path: "/v1/tokens", admin: true, status: 200},
		{name: "tokens list project", method: "GET", path: "/v1/tokens?project=acme", admin: true, status: 200},
		{name: "tokens list bad query", method: "GET", path: "/v1/tokens?projects=acme", admin: true, status: 400, check: wantCode("invalid_request")},
		{name: "tokens list no token", method: "GET", path: "/v1/tokens", status: 401},
		{name: "tokens list scoped", method: "GET", path: "/v1/tokens", headers: bearer(scoped.read), status: 403},
		{name: "tokens PUT", method: "PUT", path: "/v1/tokens", admin: true, status: 405},
		{name: "token revoke scoped", method: "DELETE", path: "/v1/tokens/" + scoped.revokeID, headers: bearer(scoped.read), status: 403},
		{name: "token revoke", method: "DELETE", path: "/v1/tokens/" + scoped.revokeID, admin: true, status: 204},
		{name: "token revoke again", method: "DELETE", path: "/v1/tokens/" + scoped.revokeID, admin: true, status: 404, check: wantCode("not_found")},
		{name: "token revoke no token", method: "DELETE", path: "/v1/tokens/" + scoped.revokeID, status: 401},
		{name: "token GET", method: "GET", path: "/v1/tokens/" + scoped.revokeID, admin: true, status: 405},
		{name: "audit", method: "GET", path: "/v1/audit", admin: true, status: 200,
			check: func(t *testing.T, r apitest.Response) {
				if !bytes.Contains(r.Body, []byte(`"token.revoked"`)) || !bytes.Contains(r.Body, []byte(`"forced":true`)) {
					t.Errorf("audit trail lacks the revocation or the forced change: %s", r.Body)
				}
			}},
		{name: "audit filtered", method: "GET", path: "/v1/audit?project=acme&kid=" + kidActive + "&action=key.updated&since=2020-01-01T00:00:00Z&until=2100-01-01T00:00:00Z&limit=1", admin: true, status: 200,
			check: func(t *testing.T, r apitest.Response) {
				if m := r.JSON(t); m["next_cursor"] == nil {
					t.Errorf("a full page has no next_cursor: %s", r.Body)
				}
			}},
		{name: "audit cursor", method: "GET", path: "/v1/audit?cursor=1", admin: true, status: 200},
		{name: "audit bad limit", method: "GET", path: "/v1/audit?limit=0", admin: true, status: 400, check: wantCode("invalid_request")},
		{name: "audit no token", method: "GET", path: "/v1/audit", status: 401},
		{name: "audit scoped", method: "GET", path: "/v1/audit", headers: bearer(scoped.read), status: 403, check: wantCode("forbidden")},
		{name: "audit POST", method: "POST", path: "/v1/audit", admin: true, status: 405},

		// ---- admin listener: JWKS sources (no --jwks-allow-private: a
		// name resolving to loopback is set, and its fetch is refused at
		// connection time)
		{name: "jwks-source put", method: "PUT", path: "/v1/projects/" + project + "/jwks-source", admin: true,
			body: `{"url":"https://localhost:1/jwks.json","refresh":"1h","grace":"1h"}`, status: 201,
			check: func(t *testing.T, r apitest.Response) {
				if e, _ := r.JSON(t)["last_error"].(string); !strings.Contains(e, "not a public address") {
					t.Errorf("last_error = %q, want the loopback address refused", e)
				}
			}},
		{name: "jwks-source put again", method: "PUT", path: "/v1/projects/" + project + "/jwks-source", admin: true,
			body: `{"url":"https://localhost:1/jwks.json"}`, status: 200},
		{name: "jwks-source get", method: "GET", path: "/v1/projects/" + project + "/jwks-source", admin: true, status: 200},
		{name: "jwks-source get scoped read", method: "GET", path: "/v1/projects/" + project + "/jwks-source", headers: bearer(scoped.read), status: 200},
		{name: "jwks-source get none", method: "GET", path: "/v1/projects/nosource/jwks-source", admin: true, status: 404, check: wantCode("not_found")},
		{name: "jwks-source get bad project", method: "GET", path: "/v1/projects/Bad!/jwks-source", admin: true, status: 400, check: wantCode("invalid_project")},
		{name: "jwks-source get no token", method: "GET", path: "/v1/projects/" + project + "/jwks-source", status: 401},
		{name: "jwks-source get other project", method: "GET", path: "/v1/projects/other/jwks-source", headers: bearer(scoped.read), status: 403, check: wantCode("forbidden")},
		{name: "jwks-source put http", method: "PUT", path: "/v1/projects/" + project + "/jwks-source", admin: true,
			body: `{"url":"http://idp.example/jwks.json"}`, status: 400, check: wantCode("invalid_url")},
		{name: "jwks-source put loopback", method: "PUT", path: "/v1/projects/" + project + "/jwks-source", admin: true,
			body: `{"url":"https://127.0.0.1/jwks.json"}`, status: 400, check: wantCode("invalid_url")},
		{name: "jwks-source put no token", method: "PUT", path: "/v1/projects/" + project + "/jwks-source", body: `{"url":"https://localhost:1/"}`, status: 401},
		{name: "jwks-source put read token", method: "PUT", path: "/v1/projects/" + project + "/jwks-source", headers: bearer(scoped.read), body: `{"url":"https://localhost:1/"}`, status: 403, check: wantCode("forbidden")},
		{name: "jwks-source store without sources", server: "broken", method: "GET", path: "/v1/projects/" + project + "/jwks-source", admin: true, status: 501, check: wantCode("not_supported")},
		{name: "jwks-source put store without sources", server: "broken", method: "PUT", path: "/v1/projects/" + project + "/jwks-source", admin: true, body: `{"url":"https://localhost:1/"}`, status: 501, check: wantCode("not_supported")},
		{name: "jwks-source POST", method: "POST", path: "/v1/projects/" + project + "/jwks-source", admin: true, status: 405},
		{name: "jwks-source delete read token", method: "DELETE", path: "/v1/projects/" + project + "/jwks-source", headers: bearer(scoped.read), status: 403},
		{name: "jwks-source delete no token", method: "DELETE", path: "/v1/projects/" + project + "/jwks-source", status: 401},
		{name: "jwks-source delete", method: "DELETE", path: "/v1/projects/" + project + "/jwks-source", admin: true, status: 204},
		{name: "jwks-source delete again", method: "DELETE", path: "/v1/projects/" + project + "/jwks-source", admin: true, status: 404, check: wantCode("not_found")},

		// ---- admin listener: metrics
		{name: "metrics", method: "GET", path: "/metrics", status: 200},
		{name: "metrics POST", method: "POST", path: "/metrics", status: 405},
	}
}

// notExercised lists documented (path, method, status) triples no test can
// produce, with the reason. Keep it short.
var notExercised = map[string]string{
	"POST /v1/projects/{project}/keys:generate 503": "busy needs every generation slot held for 5 s; server/generate_test.go TestGenerateKeyRefusals holds them from inside the package",
}

// scoped holds the scoped admin tokens setup makes on the "main" server:
// a read token of project acme, and the id of a token to revoke.
var scoped struct{ read, revokeID string }

// servers is what a case runs against.
type servers map[string]*server.Server

func startServers(t *testing.T) servers {
	t.Helper()
	quiet := slog.New(slog.DiscardHandler)
	// A durable store: scoped tokens and the audit trail live there.
	st, err := boltstore.Open(filepath.Join(t.TempDir(), "keys.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	main := servertest.Start(t, server.Config{Store: st, AdminToken: adminToken, Logger: quiet})
	admin := "http://" + main.AdminAddr()
	for i, scope := range []string{"read", "write"} {
		r := apitest.AdminDo(t, admin, adminToken, "POST", "/v1/tokens", map[string]any{"project": project, "scope": scope})
		if r.Status != 201 {
			t.Fatalf("setup: creating a token: %d %s", r.Status, r.Body)
		}
		if i == 0 {
			scoped.read, _ = r.JSON(t)["token"].(string)
		} else {
			scoped.revokeID, _ = r.JSON(t)["id"].(string)
		}
	}
	for _, k := range []struct {
		kid  string
		priv *rsa.PrivateKey
	}{{kidActive, enginetest.Key("rsa2048-a")}, {kidOff, enginetest.Key("rsa2048-b")}} {
		r := apitest.AdminDo(t, admin, adminToken, "POST", "/v1/projects/"+project+"/keys",
			map[string]any{"public_key": string(enginetest.PublicPEM(&k.priv.PublicKey)), "kid": k.kid, "label": "setup"})
		if r.Status != 201 {
			t.Fatalf("setup: registering %s: %d %s", k.kid, r.Status, r.Body)
		}
	}
	if r := apitest.AdminDo(t, admin, adminToken, "PATCH", "/v1/projects/"+project+"/keys/"+kidOff, map[string]any{"status": "inactive"}); r.Status != 200 {
		t.Fatalf("setup: deactivating: %d %s", r.Status, r.Body)
	}

	broken := servertest.Start(t, server.Config{Store: brokenStore{}, AdminToken: adminToken, Logger: quiet})

	draining := servertest.Start(t, server.Config{Store: engine.NewMemoryStore(), AdminToken: adminToken, Logger: quiet, ShutdownDelay: time.Minute})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _ = draining.Shutdown(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	deadline := time.Now().Add(5 * time.Second)
	for apitest.Do(t, "GET", "http://"+draining.Addr()+"/readyz", nil).Status != 503 {
		if time.Now().After(deadline) {
			t.Fatal("the draining server never answered /readyz with 503")
		}
		time.Sleep(5 * time.Millisecond)
	}
	return servers{"main": main, "broken": broken, "draining": draining}
}

// brokenStore fails every operation, as a key store whose database is down.
type brokenStore struct{}

var errDown = fmt.Errorf("store down: %w", context.DeadlineExceeded)

func (brokenStore) Get(context.Context, string) (*engine.Key, error) { return nil, errDown }
func (brokenStore) Create(context.Context, *engine.Key) error        { return errDown }
func (brokenStore) Update(context.Context, string, string, engine.KeyUpdate, time.Time) (*engine.Key, error) {
	return nil, errDown
}
func (brokenStore) Delete(context.Context, string, string) error        { return errDown }
func (brokenStore) List(context.Context, string) ([]*engine.Key, error) { return nil, errDown }

// spec is the parsed docs/openapi.yaml.
type spec struct {
	model *v3.Document
	val   validator.Validator
}

func loadSpec(t *testing.T) spec {
	t.Helper()
	raw, err := os.ReadFile("openapi.yaml")
	if err != nil {
		t.Fatal(err)
	}
	doc, err := libopenapi.NewDocument(raw)
	if err != nil {
		t.Fatalf("openapi.yaml: %v", err)
	}
	if v := doc.GetVersion(); !strings.HasPrefix(v, "3.1") {
		t.Fatalf("openapi.yaml is OpenAPI %s, want 3.1", v)
	}
	m, err := doc.BuildV3Model()
	if err != nil {
		t.Fatalf("openapi.yaml: %v", err)
	}
	val, errs := validator.NewValidator(doc)
	if len(errs) > 0 {
		t.Fatalf("validator: %v", errs)
	}
	if ok, verrs := val.ValidateDocument(); !ok {
		for _, e := range verrs {
			t.Errorf("openapi.yaml is not a valid OpenAPI document: %s: %s", e.Message, e.Reason)
			for _, se := range e.SchemaValidationErrors {
				t.Errorf("  %s: %s", se.FieldPath+" "+se.KeywordLocation, se.Reason)
			}
		}
		t.FailNow()
	}
	return spec{model: &m.Model, val: val}
}

// listeners returns the x-listener values of a path item.
func listeners(t *testing.T, item *v3.PathItem, path string) []string {
	t.Helper()
	n := item.Extensions.GetOrZero("x-listener")
	if n == nil {
		t.Fatalf("openapi.yaml: path %s has no x-listener", path)
	}
	var one string
	if err := n.Decode(&one); err == nil {
		return []string{one}
	}
	var many []string
	if err := n.Decode(&many); err != nil {
		t.Fatalf("openapi.yaml: path %s: x-listener must be verify, admin or a list of them", path)
	}
	return many
}

// documented returns every "METHOD path status" triple of the spec.
func (s spec) documented(t *testing.T) map[string][]string {
	out := map[string][]string{} // triple -> listeners
	for path, item := range s.model.Paths.PathItems.FromOldest() {
		ls := listeners(t, item, path)
		for method, op := range item.GetOperations().FromOldest() {
			if op.Responses == nil || op.Responses.Codes == nil {
				t.Errorf("openapi.yaml: %s %s has no responses", method, path)
				continue
			}
			for code := range op.Responses.Codes.KeysFromOldest() {
				out[strings.ToUpper(method)+" "+path+" "+code] = ls
			}
		}
	}
	return out
}

func TestOpenAPIMatchesServer(t *testing.T) {
	sp := loadSpec(t)
	documented := sp.documented(t)
	srvs := startServers(t)
	hit := map[string]bool{}
	client := &http.Client{Timeout: 15 * time.Second}

	for _, c := range apiCases() {
		if c.server == "" {
			c.server = "main"
		}
		srv := srvs[c.server]
		if srv == nil {
			t.Fatalf("case %q: unknown server %q", c.name, c.server)
		}
		probe, _ := http.NewRequest(c.method, "http://localhost"+c.path, nil)
		item, perrs, tmpl := findPath(probe, sp)
		if item == nil {
			t.Errorf("case %q: %s %s is not a route of openapi.yaml: %v", c.name, c.method, c.path, perrs)
			continue
		}
		ls := listeners(t, item, tmpl)
		if c.listener != "" {
			ls = []string{c.listener}
		}
		for _, l := range ls {
			base := "http://" + srv.Addr()
			if l == "admin" {
				base = "http://" + srv.AdminAddr()
			}
			t.Run(c.name+"@"+l, func(t *testing.T) {
				req, err := http.NewRequest(c.method, base+c.path, strings.NewReader(c.body))
				if err != nil {
					t.Fatal(err)
				}
				if c.body == "" {
					req.Body, req.ContentLength = http.NoBody, 0
				} else {
					req.Header.Set("Content-Type", "application/json")
				}
				for i := 0; i+1 < len(c.headers); i += 2 {
					req.Header.Add(c.headers[i], c.headers[i+1])
				}
				if c.admin {
					req.Header.Set("Authorization", "Bearer "+adminToken)
				}
				resp, err := client.Do(req)
				if err != nil {
					t.Fatal(err)
				}
				body, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				r := apitest.Response{Status: resp.StatusCode, Header: resp.Header, Body: body}
				if resp.StatusCode != c.status {
					t.Fatalf("%s %s: status %d, want %d; body %s", c.method, c.path, resp.StatusCode, c.status, body)
				}
				triple := c.method + " " + tmpl + " " + strconv.Itoa(resp.StatusCode)
				if _, ok := documented[triple]; !ok {
					t.Fatalf("%s: the server answered %d, which openapi.yaml does not document for %s %s", c.name, resp.StatusCode, c.method, tmpl)
				}
				hit[triple] = true

				// The validator reads the request again: give it a fresh body.
				vreq, _ := http.NewRequest(c.method, "http://localhost"+c.path, strings.NewReader(c.body))
				vreq.Header = req.Header.Clone()
				if resp.StatusCode < 300 {
					if ok, errs := sp.val.ValidateHttpRequestSync(vreq); !ok {
						reportErrors(t, "request", errs)
					}
					vreq, _ = http.NewRequest(c.method, "http://localhost"+c.path, strings.NewReader(c.body))
					vreq.Header = req.Header.Clone()
				}
				resp.Body = io.NopCloser(bytes.NewReader(body))
				resp.Request = vreq
				if ok, errs := sp.val.ValidateHttpResponse(vreq, resp); !ok {
					reportErrors(t, "response "+string(body), errs)
				}
				if c.check != nil {
					c.check(t, r)
				}
			})
		}
	}

	var missing []string
	for triple := range documented {
		if !hit[triple] && notExercised[triple] == "" {
			missing = append(missing, triple)
		}
	}
	sort.Strings(missing)
	for _, m := range missing {
		t.Errorf("openapi.yaml documents %q but no case in docs/openapi_test.go exercises it: add one (or a reason in notExercised)", m)
	}
	for triple := range notExercised {
		if _, ok := documented[triple]; !ok {
			t.Errorf("notExercised names %q, which openapi.yaml does not document", triple)
		}
	}
}

func findPath(req *http.Request, sp spec) (*v3.PathItem, []string, string) {
	// The validator's own router, so that cases and validation agree.
	item, errs, tmpl := paths.FindPath(req, sp.model, nil)
	var msgs []string
	for _, e := range errs {
		msgs = append(msgs, e.Message)
	}
	return item, msgs, tmpl
}

func reportErrors(t *testing.T, what string, errs []*verrors.ValidationError) {
	t.Helper()
	for _, e := range errs {
		t.Errorf("%s does not match openapi.yaml: %s: %s", what, e.Message, e.Reason)
		for _, se := range e.SchemaValidationErrors {
			t.Errorf("  at %s: %s", se.FieldPath+" "+se.KeywordLocation, se.Reason)
		}
	}
}

// TestOpenAPIErrorCodes keeps the spec's list of verify error codes equal
// to the engine's, in order.
func TestOpenAPIErrorCodes(t *testing.T) {
	sp := loadSpec(t)
	s := sp.model.Components.Schemas.GetOrZero("ErrorCode")
	if s == nil {
		t.Fatal("openapi.yaml has no components.schemas.ErrorCode")
	}
	var got []string
	for _, n := range s.Schema().Enum {
		got = append(got, n.Value)
	}
	var want []string
	for _, c := range engine.Codes() {
		want = append(want, c.String())
	}
	if !slices.Equal(got, want) {
		t.Errorf("ErrorCode enum = %v, want the engine's codes %v", got, want)
	}
}
