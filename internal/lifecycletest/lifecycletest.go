// Package lifecycletest tests the key lifecycle over a REAL jwtgate server
// (both listeners on loopback): the rotation guardrail, scoped admin tokens
// and the audit trail. Each durable store runs it from its own tests, so
// that the embedded bbolt store and PostgreSQL are tested the same way:
//
//	func TestLifecycle(t *testing.T) {
//		lifecycletest.Run(t, func(t *testing.T) engine.KeyStore { return openMyStore(t) })
//	}
package lifecycletest

import (
	"bytes"
	"context"
	"crypto/rsa"
	"fmt"
	"log/slog"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jwtgate/jwtgate/admin"
	"github.com/jwtgate/jwtgate/engine"
	"github.com/jwtgate/jwtgate/engine/enginetest"
	"github.com/jwtgate/jwtgate/internal/apitest"
	"github.com/jwtgate/jwtgate/server"
	"github.com/jwtgate/jwtgate/server/servertest"
)

// RootToken is the root admin token of the servers Start starts.
const RootToken = "lifecycle-root-token-0123456789abcdef"

// Engine limits of the test servers: short, so that the guardrail's window
// (max TTL + leeway + usage flush interval + 1 s) is a few seconds.
const (
	MaxTTL        = 2 * time.Second
	FlushInterval = 50 * time.Millisecond
	// Window is the rotation guardrail's window on these servers.
	Window = MaxTTL + FlushInterval + time.Second
)

// Node is a real server under test.
type Node struct {
	T     *testing.T
	Srv   *server.Server
	Store engine.KeyStore
	Base  string // verify listener URL
	Admin string // admin listener URL
	Logs  *LogBuffer
}

// LogBuffer is a goroutine-safe log sink.
type LogBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *LogBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *LogBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// Start starts a server on st with the limits above and the root token.
func Start(t *testing.T, st engine.KeyStore) *Node {
	t.Helper()
	logs := &LogBuffer{}
	srv := servertest.Start(t, server.Config{
		Store: st, AdminToken: RootToken, UsageFlushInterval: FlushInterval,
		Logger:        slog.New(slog.NewTextHandler(logs, nil)),
		EngineOptions: []engine.Option{engine.WithMaxTTL(MaxTTL), engine.WithLeeway(0)},
	})
	return &Node{T: t, Srv: srv, Store: st, Base: "http://" + srv.Addr(), Admin: "http://" + srv.AdminAddr(), Logs: logs}
}

// Do sends an admin request with token.
func (n *Node) Do(token, method, path string, body any) apitest.Response {
	n.T.Helper()
	return apitest.AdminDo(n.T, n.Admin, token, method, path, body)
}

// Root sends an admin request with the root token.
func (n *Node) Root(method, path string, body any) apitest.Response {
	n.T.Helper()
	return n.Do(RootToken, method, path, body)
}

// Want checks a response's status and, for errors, its code.
func Want(t *testing.T, what string, r apitest.Response, status int, code string) map[string]any {
	t.Helper()
	if r.Status != status {
		t.Fatalf("%s: status %d, want %d; body %s", what, r.Status, status, r.Body)
	}
	if len(r.Body) == 0 {
		return nil
	}
	m := r.JSON(t)
	if code != "" {
		if m["error"] != code {
			t.Fatalf("%s: error %v, want %s; body %s", what, m["error"], code, r.Body)
		}
		if msg, _ := m["message"].(string); msg == "" {
			t.Fatalf("%s: no message: %s", what, r.Body)
		}
	}
	return m
}

// AddKey registers priv's public key as kid in project with token.
func (n *Node) AddKey(token, project string, priv *rsa.PrivateKey, kid string) apitest.Response {
	n.T.Helper()
	return n.Do(token, "POST", "/v1/projects/"+project+"/keys",
		map[string]any{"public_key": string(enginetest.PublicPEM(&priv.PublicKey)), "kid": kid, "label": "key " + kid})
}

// VerifyOK verifies a fresh token of kid and fails unless it is valid.
func (n *Node) VerifyOK(priv *rsa.PrivateKey, kid, project string) {
	n.T.Helper()
	tok := enginetest.SignRS256(priv, enginetest.Header(kid), enginetest.Claims(project, time.Now().Unix(), int64(MaxTTL/time.Second)))
	if r := apitest.Do(n.T, "GET", n.Base+"/v1/verify", nil, "Authorization", "Bearer "+tok); r.Status != 200 {
		n.T.Fatalf("verify with %s: %d %s", kid, r.Status, r.Body)
	}
}

// Audit lists the audit trail with query q (root token).
func (n *Node) Audit(q string) (events []map[string]any, next string) {
	n.T.Helper()
	m := Want(n.T, "GET /v1/audit?"+q, n.Root("GET", "/v1/audit?"+q, nil), 200, "")
	for _, e := range m["events"].([]any) {
		events = append(events, e.(map[string]any))
	}
	next, _ = m["next_cursor"].(string)
	return events, next
}

// Run runs the lifecycle tests against servers on the stores open returns
// (a new, empty store per subtest; open arranges its cleanup).
func Run(t *testing.T, open func(t *testing.T) engine.KeyStore) {
	t.Run("Guardrail", func(t *testing.T) { testGuardrail(t, Start(t, open(t))) })
	t.Run("ScopedTokens", func(t *testing.T) { testScopedTokens(t, Start(t, open(t))) })
	t.Run("AuditTrail", func(t *testing.T) { testAuditTrail(t, Start(t, open(t))) })
	t.Run("FailedAuthLogged", func(t *testing.T) { testFailedAuthLogged(t, Start(t, open(t))) })
}

func keyPath(project, kid string) string { return "/v1/projects/" + project + "/keys/" + kid }

// CheckInUse checks a 409 key_in_use answer: last_used_at within the last
// few seconds, safe_after = last_used_at + Window rounded up to seconds,
// Retry-After.
func CheckInUse(t *testing.T, what string, r apitest.Response) {
	t.Helper()
	m := Want(t, what, r, 409, "key_in_use")
	last, err1 := time.Parse(time.RFC3339, fmt.Sprint(m["last_used_at"]))
	safe, err2 := time.Parse(time.RFC3339, fmt.Sprint(m["safe_after"]))
	if err1 != nil || err2 != nil {
		t.Fatalf("%s: last_used_at/safe_after not RFC 3339: %s", what, r.Body)
	}
	if d := time.Since(last); d < -time.Second || d > 10*time.Second {
		t.Fatalf("%s: last_used_at %v is not the recent verification", what, last)
	}
	want := last.Add(Window + time.Second - 1).Truncate(time.Second)
	if !safe.Equal(want) {
		t.Fatalf("%s: safe_after %v, want last_used_at + max TTL + leeway + flush interval + 1 s = %v", what, safe, want)
	}
	ra, err := strconv.Atoi(r.Header.Get("Retry-After"))
	if err != nil || ra < 1 || ra > int((Window+2*time.Second)/time.Second) {
		t.Fatalf("%s: Retry-After %q", what, r.Header.Get("Retry-After"))
	}
}

func testGuardrail(t *testing.T, n *Node) {
	privOld, privNew, privIdle := enginetest.Key("rsa2048-a"), enginetest.Key("rsa2048-b"), enginetest.Key("rsa2048-c")
	Want(t, "add old", n.AddKey(RootToken, "acme", privOld, "old"), 201, "")
	Want(t, "add new", n.AddKey(RootToken, "acme", privNew, "new"), 201, "")
	Want(t, "add idle", n.AddKey(RootToken, "acme", privIdle, "idle"), 201, "")
	n.VerifyOK(privOld, "old", "acme")

	// A key that verified a token just now: deactivation and deletion are
	// refused, and change nothing.
	CheckInUse(t, "PATCH inactive of a key in use", n.Root("PATCH", keyPath("acme", "old"), map[string]any{"status": "inactive"}))
	CheckInUse(t, "DELETE of a key in use", n.Root("DELETE", keyPath("acme", "old"), nil))
	CheckInUse(t, "DELETE ?force=false", n.Root("DELETE", keyPath("acme", "old")+"?force=false", nil))
	n.VerifyOK(privOld, "old", "acme")
	// A label change is not guarded; a malformed force is refused.
	Want(t, "PATCH label", n.Root("PATCH", keyPath("acme", "old"), map[string]any{"label": "still here"}), 200, "")
	for _, q := range []string{"?force=1", "?force=yes", "?force=true&force=true", "?force="} {
		Want(t, "DELETE "+q, n.Root("DELETE", keyPath("acme", "old")+q, nil), 400, "invalid_request")
	}
	// A key that never verified a token is not guarded.
	Want(t, "deactivate idle", n.Root("PATCH", keyPath("acme", "idle"), map[string]any{"status": "inactive"}), 200, "")

	// force overrides, and the audit trail records that it did.
	k := Want(t, "forced deactivation", n.Root("PATCH", keyPath("acme", "old")+"?force=true", map[string]any{"status": "inactive"}), 200, "")
	if k["status"] != "inactive" {
		t.Fatalf("forced deactivation: %v", k)
	}
	ev, _ := n.Audit("kid=old&action=key.updated&limit=1")
	if len(ev) != 1 || ev[0]["forced"] != true || ev[0]["before"].(map[string]any)["status"] != "active" || ev[0]["after"].(map[string]any)["status"] != "inactive" {
		t.Fatalf("audit of the forced deactivation: %v", ev)
	}
	// An inactive key verifies nothing: deleting it is not guarded.
	Want(t, "delete inactive old", n.Root("DELETE", keyPath("acme", "old"), nil), 204, "")

	// Forced deletion of an active key in use.
	n.VerifyOK(privNew, "new", "acme")
	CheckInUse(t, "DELETE new", n.Root("DELETE", keyPath("acme", "new"), nil))
	Want(t, "forced delete", n.Root("DELETE", keyPath("acme", "new")+"?force=true", nil), 204, "")
	ev, _ = n.Audit("kid=new&action=key.deleted")
	if len(ev) != 1 || ev[0]["forced"] != true || ev[0]["before"].(map[string]any)["status"] != "active" || ev[0]["after"] != nil {
		t.Fatalf("audit of the forced deletion: %v", ev)
	}

	// Once the window has passed, no force is needed (and none recorded).
	Want(t, "add later", n.AddKey(RootToken, "acme", privNew, "later"), 201, "")
	n.VerifyOK(privNew, "later", "acme")
	r := n.Root("PATCH", keyPath("acme", "later"), map[string]any{"status": "inactive"})
	CheckInUse(t, "PATCH later", r)
	safe, _ := time.Parse(time.RFC3339, fmt.Sprint(r.JSON(t)["safe_after"]))
	time.Sleep(time.Until(safe) + 50*time.Millisecond)
	Want(t, "deactivate after the window", n.Root("PATCH", keyPath("acme", "later"), map[string]any{"status": "inactive"}), 200, "")
	ev, _ = n.Audit("kid=later&action=key.updated")
	if len(ev) != 1 || ev[0]["forced"] != false {
		t.Fatalf("audit of the unforced deactivation: %v", ev)
	}
}

func createToken(t *testing.T, n *Node, project, scope string) (id, secret string) {
	t.Helper()
	r := n.Root("POST", "/v1/tokens", map[string]any{"project": project, "scope": scope, "label": scope + " token"})
	m := Want(t, "create token", r, 201, "")
	id, _ = m["id"].(string)
	secret, _ = m["token"].(string)
	if !strings.HasPrefix(id, "tok_") || !admin.LooksLikeSecret(secret) || m["project"] != project || m["scope"] != scope || m["revoked_at"] != nil {
		t.Fatalf("created token: %s", r.Body)
	}
	if cc := r.Header.Get("Cache-Control"); cc != "no-store" {
		t.Fatalf("Cache-Control %q on the response carrying the secret", cc)
	}
	return id, secret
}

func testScopedTokens(t *testing.T, n *Node) {
	privA, privB := enginetest.Key("rsa2048-a"), enginetest.Key("rsa2048-b")
	Want(t, "add other-project key", n.AddKey(RootToken, "other", privB, "other-key"), 201, "")
	readID, readTok := createToken(t, n, "acme", "read")
	writeID, writeTok := createToken(t, n, "acme", "write")

	// Only the hash is stored.
	ts := n.Store.(admin.TokenStore)
	st, err := ts.TokenByHash(context.Background(), admin.HashSecret(writeTok))
	if err != nil || st.ID != writeID || st.Scope != "write" {
		t.Fatalf("stored token: %+v %v", st, err)
	}
	list := n.Root("GET", "/v1/tokens?project=acme", nil)
	Want(t, "list tokens", list, 200, "")
	if strings.Contains(string(list.Body), readTok) || strings.Contains(string(list.Body), writeTok) || strings.Contains(string(list.Body), `"token"`) ||
		!strings.Contains(string(list.Body), readID) || !strings.Contains(string(list.Body), writeID) {
		t.Fatalf("token list: %s", list.Body)
	}

	// write token: its own project's keys, all of it.
	Want(t, "write: add key", n.AddKey(writeTok, "acme", privA, "acme-key"), 201, "")
	Want(t, "write: list keys", n.Do(writeTok, "GET", "/v1/projects/acme/keys", nil), 200, "")
	Want(t, "write: patch", n.Do(writeTok, "PATCH", keyPath("acme", "acme-key"), map[string]any{"label": "by token"}), 200, "")
	gen := Want(t, "write: generate", n.Do(writeTok, "POST", "/v1/projects/acme/keys:generate", map[string]any{"kid": "generated"}), 201, "")
	if gen["kid"] != "generated" {
		t.Fatalf("generated key: %v", gen)
	}
	Want(t, "write: generate elsewhere", n.Do(writeTok, "POST", "/v1/projects/other/keys:generate", map[string]any{}), 403, "forbidden")
	Want(t, "read: generate", n.Do(readTok, "POST", "/v1/projects/acme/keys:generate", map[string]any{}), 403, "forbidden")
	if ev, _ := n.Audit("action=key.generated"); len(ev) != 1 || ev[0]["kid"] != "generated" ||
		ev[0]["actor"].(map[string]any)["id"] != writeID || ev[0]["after"].(map[string]any)["status"] != "active" {
		t.Fatalf("audit of the generation: %v", ev)
	} else if strings.Contains(fmt.Sprint(ev), "PRIVATE KEY") {
		t.Fatal("the generated private key is in the audit trail")
	}
	// read token: reads only.
	Want(t, "read: list keys", n.Do(readTok, "GET", "/v1/projects/acme/keys", nil), 200, "")
	Want(t, "read: get key", n.Do(readTok, "GET", keyPath("acme", "acme-key"), nil), 200, "")
	Want(t, "read: add key", n.AddKey(readTok, "acme", privB, "nope"), 403, "forbidden")
	Want(t, "read: patch", n.Do(readTok, "PATCH", keyPath("acme", "acme-key"), map[string]any{"label": "x"}), 403, "forbidden")
	Want(t, "read: delete", n.Do(readTok, "DELETE", keyPath("acme", "acme-key"), nil), 403, "forbidden")
	// Neither reaches another project, tokens or the audit trail.
	for _, tok := range []string{readTok, writeTok} {
		Want(t, "other project: list", n.Do(tok, "GET", "/v1/projects/other/keys", nil), 403, "forbidden")
		Want(t, "other project: get", n.Do(tok, "GET", keyPath("other", "other-key"), nil), 403, "forbidden")
		Want(t, "other project: delete", n.Do(tok, "DELETE", keyPath("other", "other-key")+"?force=true", nil), 403, "forbidden")
		Want(t, "other project: add", n.AddKey(tok, "other", privA, "sneaky"), 403, "forbidden")
		Want(t, "tokens: list", n.Do(tok, "GET", "/v1/tokens", nil), 403, "forbidden")
		Want(t, "tokens: create", n.Do(tok, "POST", "/v1/tokens", map[string]any{"project": "acme", "scope": "write"}), 403, "forbidden")
		Want(t, "tokens: revoke", n.Do(tok, "DELETE", "/v1/tokens/"+readID, nil), 403, "forbidden")
		Want(t, "audit", n.Do(tok, "GET", "/v1/audit", nil), 403, "forbidden")
	}
	Want(t, "other key untouched", n.Root("GET", keyPath("other", "other-key"), nil), 200, "")
	// The audit trail names the scoped token (its id, never its secret).
	ev, _ := n.Audit("kid=acme-key")
	if len(ev) != 2 || ev[0]["action"] != "key.updated" || ev[1]["action"] != "key.created" {
		t.Fatalf("audit of acme-key: %v", ev)
	}
	for _, e := range ev {
		if a := e["actor"].(map[string]any); a["type"] != "token" || a["id"] != writeID {
			t.Fatalf("actor %v, want token %s", a, writeID)
		}
	}

	// Bad requests.
	Want(t, "create: bad scope", n.Root("POST", "/v1/tokens", map[string]any{"project": "acme", "scope": "admin"}), 400, "invalid_scope")
	Want(t, "create: bad project", n.Root("POST", "/v1/tokens", map[string]any{"project": "Acme!", "scope": "read"}), 400, "invalid_project")
	Want(t, "create: unknown member", n.Root("POST", "/v1/tokens", map[string]any{"project": "acme", "scope": "read", "admin": true}), 400, "invalid_json")
	Want(t, "list: bad query", n.Root("GET", "/v1/tokens?projekt=acme", nil), 400, "invalid_request")
	Want(t, "tokens: PUT", n.Root("PUT", "/v1/tokens", nil), 405, "")
	Want(t, "token: GET", n.Root("GET", "/v1/tokens/"+readID, nil), 405, "")
	Want(t, "revoke: unknown", n.Root("DELETE", "/v1/tokens/tok_0000000000000000", nil), 404, "not_found")

	// Revocation is immediate.
	Want(t, "revoke", n.Root("DELETE", "/v1/tokens/"+readID, nil), 204, "")
	Want(t, "revoked token", n.Do(readTok, "GET", "/v1/projects/acme/keys", nil), 401, "unauthorized")
	Want(t, "revoke twice", n.Root("DELETE", "/v1/tokens/"+readID, nil), 404, "not_found")
	Want(t, "write token still valid", n.Do(writeTok, "GET", "/v1/projects/acme/keys", nil), 200, "")
	ev, _ = n.Audit("action=token.revoked")
	if len(ev) != 1 || ev[0]["token_id"] != readID || ev[0]["after"].(map[string]any)["revoked_at"] == nil || ev[0]["before"].(map[string]any)["revoked_at"] != nil {
		t.Fatalf("audit of the revocation: %v", ev)
	}
	all, _ := n.Audit("limit=1000")
	raw := fmt.Sprint(all)
	if strings.Contains(raw, readTok) || strings.Contains(raw, writeTok) {
		t.Fatal("a token secret is in the audit trail")
	}
	if logs := n.Logs.String(); strings.Contains(logs, readTok) || strings.Contains(logs, writeTok) {
		t.Fatal("a token secret is in the log")
	}
	// A token-shaped secret that was never issued, and the root token in
	// the wrong case, are refused.
	fake := admin.SecretPrefix + strings.Repeat("A", admin.SecretLen-len(admin.SecretPrefix))
	Want(t, "never issued", n.Do(fake, "GET", "/v1/projects/acme/keys", nil), 401, "unauthorized")
	Want(t, "root upper-cased", n.Do(strings.ToUpper(RootToken), "GET", "/v1/projects/acme/keys", nil), 401, "unauthorized")
}

func testAuditTrail(t *testing.T, n *Node) {
	privA, privB := enginetest.Key("rsa2048-a"), enginetest.Key("rsa2048-b")
	start := time.Now().UTC().Truncate(time.Second)
	Want(t, "add a1", n.AddKey(RootToken, "alpha", privA, "a1"), 201, "")
	Want(t, "add b1", n.AddKey(RootToken, "beta", privB, "b1"), 201, "")
	Want(t, "patch a1", n.Root("PATCH", keyPath("alpha", "a1"), map[string]any{"label": "renamed"}), 200, "")
	Want(t, "delete b1", n.Root("DELETE", keyPath("beta", "b1"), nil), 204, "")
	tokID, _ := createToken(t, n, "alpha", "read")
	// Refused changes are not audited.
	Want(t, "duplicate kid", n.AddKey(RootToken, "alpha", privB, "a1"), 409, "kid_taken")

	ev, next := n.Audit("")
	if next != "" || len(ev) != 5 {
		t.Fatalf("audit: %d events, next %q: %v", len(ev), next, ev)
	}
	want := []struct{ action, project, kid string }{
		{"token.created", "alpha", ""}, {"key.deleted", "beta", "b1"}, {"key.updated", "alpha", "a1"},
		{"key.created", "beta", "b1"}, {"key.created", "alpha", "a1"},
	}
	var prevID float64
	for i, w := range want {
		e := ev[i]
		if e["action"] != w.action || e["project"] != w.project || fmt.Sprint(e["kid"]) != fmt.Sprint(orNil(w.kid)) {
			t.Fatalf("event %d: %v, want %+v", i, e, w)
		}
		if a := e["actor"].(map[string]any); a["type"] != "root" || a["id"] != nil {
			t.Fatalf("event %d: actor %v, want root", i, a)
		}
		tm, err := time.Parse(time.RFC3339Nano, fmt.Sprint(e["time"]))
		if err != nil || tm.Before(start) || time.Since(tm) > time.Minute {
			t.Fatalf("event %d: time %v", i, e["time"])
		}
		id := e["id"].(float64)
		if i > 0 && id >= prevID {
			t.Fatalf("events not newest first: %v after %v", id, prevID)
		}
		prevID = id
	}
	if ev[0]["token_id"] != tokID {
		t.Fatalf("token.created names %v, want %s", ev[0]["token_id"], tokID)
	}
	upd := ev[2]
	if upd["before"].(map[string]any)["label"] != "key a1" || upd["after"].(map[string]any)["label"] != "renamed" {
		t.Fatalf("before/after of the update: %v", upd)
	}
	if ev[4]["before"] != nil || ev[4]["after"].(map[string]any)["thumbprint"] == "" {
		t.Fatalf("before/after of the creation: %v", ev[4])
	}

	// Filters and pages.
	count := func(q string, n0 int) {
		t.Helper()
		if ev, _ := n.Audit(q); len(ev) != n0 {
			t.Fatalf("audit?%s: %d events, want %d: %v", q, len(ev), n0, ev)
		}
	}
	count("project=alpha", 3)
	count("project=beta&action=key.created", 1)
	count("kid=a1", 2)
	count("action=key.deleted", 1)
	count("since="+url.QueryEscape(start.Format(time.RFC3339)), 5)
	count("until="+url.QueryEscape(start.Format(time.RFC3339)), 0)
	count("since="+url.QueryEscape(time.Now().Add(time.Hour).UTC().Format(time.RFC3339)), 0)
	var pages [][]map[string]any
	cursor := ""
	for {
		q := "limit=2"
		if cursor != "" {
			q += "&cursor=" + cursor
		}
		page, next := n.Audit(q)
		pages = append(pages, page)
		if next == "" {
			break
		}
		cursor = next
		if len(pages) > 5 {
			t.Fatal("pagination does not end")
		}
	}
	var ids []float64
	for _, p := range pages {
		for _, e := range p {
			ids = append(ids, e["id"].(float64))
		}
	}
	if len(ids) != 5 || ids[0] != ev[0]["id"] || ids[4] != ev[4]["id"] {
		t.Fatalf("paged ids %v", ids)
	}
	for _, q := range []string{"limit=0", "limit=1001", "limit=x", "since=yesterday", "action=key.exploded",
		"project=Bad!", "kid=a%20b", "cursor=-1", "bogus=1", "project=alpha&project=beta"} {
		Want(t, "audit?"+q, n.Root("GET", "/v1/audit?"+q, nil), 400, "invalid_request")
	}
	Want(t, "POST /v1/audit", n.Root("POST", "/v1/audit", nil), 405, "")
	Want(t, "audit without token", apitest.Do(t, "GET", n.Admin+"/v1/audit", nil), 401, "unauthorized")
}

func orNil(s string) any {
	if s == "" {
		return nil
	}
	return s
}

func testFailedAuthLogged(t *testing.T, n *Node) {
	const bad = "not-the-admin-token-but-long-enough"
	secretish := admin.SecretPrefix + strings.Repeat("Z", admin.SecretLen-len(admin.SecretPrefix))
	for i := 0; i < 40; i++ {
		tok := bad
		if i%2 == 1 {
			tok = secretish
		}
		Want(t, "bad token", n.Do(tok, "GET", "/v1/projects/acme/keys", nil), 401, "unauthorized")
	}
	Want(t, "no token", apitest.Do(t, "GET", n.Admin+"/v1/tokens", nil), 401, "unauthorized")
	logs := n.Logs.String()
	lines := strings.Count(logs, "admin authentication failed")
	if lines < 1 || lines > 12 {
		t.Fatalf("%d log lines for 41 failed authentications; want a bounded few (burst 10)", lines)
	}
	if strings.Contains(logs, bad) || strings.Contains(logs, secretish) {
		t.Fatal("the presented token is in the log")
	}
	if !strings.Contains(logs, "remote_ip=127.0.0.1") || !strings.Contains(logs, "route=/v1/projects/{project}/keys") {
		t.Fatalf("log lacks the source or route:\n%s", logs)
	}
	// Later, the next line says how many were left out.
	time.Sleep(1100 * time.Millisecond)
	Want(t, "bad token later", n.Do(bad, "GET", "/v1/audit", nil), 401, "unauthorized")
	if logs := n.Logs.String(); !strings.Contains(logs, "not_logged_before=") {
		t.Fatalf("no count of the lines left out:\n%s", logs)
	}
	m := string(apitest.Do(t, "GET", n.Admin+"/metrics", nil).Body)
	if !strings.Contains(m, "jwtgate_admin_auth_failures_total 42") {
		t.Fatalf("metrics lack jwtgate_admin_auth_failures_total 42")
	}
}
