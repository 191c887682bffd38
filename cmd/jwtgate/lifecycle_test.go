package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jwtgate/jwtgate/engine/enginetest"
	"github.com/jwtgate/jwtgate/internal/lifecycletest"
	"github.com/jwtgate/jwtgate/store/boltstore"
)

func lifecycleNode(t *testing.T) (*lifecycletest.Node, []string) {
	t.Helper()
	st, err := boltstore.Open(filepath.Join(t.TempDir(), "keys.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	n := lifecycletest.Start(t, st)
	return n, []string{"--admin-url", n.Admin, "--admin-token", lifecycletest.RootToken}
}

func writePub(t *testing.T, name string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name+".pub")
	if err := os.WriteFile(p, enginetest.PublicPEM(&enginetest.Key(name).PublicKey), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// TestCLIRotate walks a rotation with keys rotate and keys rotate --finish
// against a real server: the plan, the refusals (new key unused, old key
// still in use, with the time to wait) and the deactivation once safe.
func TestCLIRotate(t *testing.T) {
	n, adm := lifecycleNode(t)
	rot := func(args ...string) (int, string, string) {
		t.Helper()
		return runCLI(t, append(append([]string{"keys", "rotate", "--project", "acme"}, args...), adm...)...)
	}
	code, out, errs := rot("--public-key", writePub(t, "rsa2048-a"), "--kid", "old")
	if code != 0 || !strings.Contains(out, "Registered the new key old") || !strings.Contains(out, "No older active key") {
		t.Fatalf("first rotate: %d %q %q", code, out, errs)
	}
	n.VerifyOK(enginetest.Key("rsa2048-a"), "old", "acme")
	code, out, errs = rot("--public-key", writePub(t, "rsa2048-b"), "--kid", "new", "--label", "2026 key")
	if code != 0 || !strings.Contains(out, "Registered the new key new") || !strings.Contains(out, "old  last verified a token at ") ||
		!strings.Contains(out, "jwtgate keys rotate --project acme --finish") {
		t.Fatalf("rotate: %d %q %q", code, out, errs)
	}
	// The new key has verified nothing: traffic has not moved.
	code, _, errs = rot("--finish")
	if code != 1 || !strings.Contains(errs, "new key new has not verified any token yet") {
		t.Fatalf("finish before traffic moved: %d %q", code, errs)
	}
	n.VerifyOK(enginetest.Key("rsa2048-b"), "new", "acme")
	n.VerifyOK(enginetest.Key("rsa2048-a"), "old", "acme")
	code, _, errs = rot("--finish")
	if code != 1 || !strings.Contains(errs, "not yet: old verified a token at ") || !strings.Contains(errs, "safe to deactivate after ") || !strings.Contains(errs, "(in ") {
		t.Fatalf("finish while old is in use: %d %q", code, errs)
	}
	if k := lifecycletest.Want(t, "old", n.Root("GET", "/v1/projects/acme/keys/old", nil), 200, ""); k["status"] != "active" {
		t.Fatalf("refused finish changed the key: %v", k)
	}
	// Once the window has passed it deactivates the old key only.
	time.Sleep(lifecycletest.Window + time.Second)
	code, out, errs = rot("--finish")
	if code != 0 || !strings.Contains(out, "deactivated old") {
		t.Fatalf("finish: %d %q %q", code, out, errs)
	}
	for kid, want := range map[string]string{"old": "inactive", "new": "active"} {
		if k := lifecycletest.Want(t, kid, n.Root("GET", "/v1/projects/acme/keys/"+kid, nil), 200, ""); k["status"] != want {
			t.Fatalf("%s: %v, want %s", kid, k["status"], want)
		}
	}
	code, _, errs = rot("--finish")
	if code != 1 || !strings.Contains(errs, "has 1 active key(s)") {
		t.Fatalf("finish with one key: %d %q", code, errs)
	}
	// Usage errors.
	if code, _, errs = rot(); code != 2 || !strings.Contains(errs, "--public-key is required") {
		t.Fatalf("rotate without a key: %d %q", code, errs)
	}
	if code, _, errs = rot("--finish", "--kid", "x"); code != 2 || !strings.Contains(errs, "--finish takes no --public-key or --kid") {
		t.Fatalf("finish with --kid: %d %q", code, errs)
	}
	// --force: deactivates although in use; the audit trail says so.
	code, _, _ = rot("--public-key", writePub(t, "rsa2048-c"), "--kid", "newer")
	n.VerifyOK(enginetest.Key("rsa2048-c"), "newer", "acme")
	n.VerifyOK(enginetest.Key("rsa2048-b"), "new", "acme")
	if code, out, errs = rot("--finish", "--force"); code != 0 || !strings.Contains(out, "deactivated new") {
		t.Fatalf("forced finish: %d %q %q", code, out, errs)
	}
	if ev, _ := n.Audit("kid=new&action=key.updated"); len(ev) != 1 || ev[0]["forced"] != true {
		t.Fatalf("audit of the forced finish: %v", ev)
	}
}

// TestCLITokensAndAudit: tokens create/list/revoke and audit against a real
// server, and a scoped token used by keys.
func TestCLITokensAndAudit(t *testing.T) {
	_, adm := lifecycleNode(t)
	code, out, errs := runCLI(t, append([]string{"tokens", "create", "--project", "acme", "--scope", "write", "--label", "ci"}, adm...)...)
	var created struct{ ID, Token, Scope string }
	if code != 0 || json.Unmarshal([]byte(out), &created) != nil || created.Scope != "write" || !strings.HasPrefix(created.Token, "jgt_") ||
		!strings.Contains(errs, "shown only this once") {
		t.Fatalf("tokens create: %d %q %q", code, out, errs)
	}
	scoped := []string{"--admin-url", adm[1], "--admin-token", created.Token}
	if code, _, errs = runCLI(t, append([]string{"keys", "add", "--project", "acme", "--kid", "k1", "--public-key", writePub(t, "rsa2048-a")}, scoped...)...); code != 0 {
		t.Fatalf("keys add with the scoped token: %d %q", code, errs)
	}
	if code, _, errs = runCLI(t, append([]string{"keys", "list", "--project", "other"}, scoped...)...); code != 1 || !strings.Contains(errs, "403 forbidden") {
		t.Fatalf("keys list of another project: %d %q", code, errs)
	}
	if code, _, errs = runCLI(t, append([]string{"audit"}, scoped...)...); code != 1 || !strings.Contains(errs, "403 forbidden") {
		t.Fatalf("audit with a scoped token: %d %q", code, errs)
	}
	if code, out, _ = runCLI(t, append([]string{"tokens", "list", "--project", "acme"}, adm...)...); code != 0 || !strings.Contains(out, created.ID) || strings.Contains(out, created.Token) {
		t.Fatalf("tokens list: %d %q", code, out)
	}
	if code, out, _ = runCLI(t, append([]string{"tokens", "revoke", "--id", created.ID}, adm...)...); code != 0 || !strings.Contains(out, "revoked "+created.ID) {
		t.Fatalf("tokens revoke: %d %q", code, out)
	}
	if code, _, errs = runCLI(t, append([]string{"keys", "list", "--project", "acme"}, scoped...)...); code != 1 || !strings.Contains(errs, "401 unauthorized") {
		t.Fatalf("revoked token: %d %q", code, errs)
	}
	code, out, errs = runCLI(t, append([]string{"audit", "--project", "acme"}, adm...)...)
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if code != 0 || len(lines) != 3 || !strings.Contains(lines[0], "\troot\ttoken.revoked\tacme\t"+created.ID) ||
		!strings.Contains(lines[1], "\ttoken:"+created.ID+"\tkey.created\tacme\tk1") || !strings.Contains(lines[2], "token.created") {
		t.Fatalf("audit: %d %q %q", code, out, errs)
	}
	if code, _, errs = runCLI(t, append([]string{"audit", "--limit", "1"}, adm...)...); code != 0 || !strings.Contains(errs, "more events: add --cursor ") {
		t.Fatalf("audit --limit 1: %d %q", code, errs)
	}
	if code, out, _ = runCLI(t, append([]string{"audit", "--json", "--action", "key.created"}, adm...)...); code != 0 || !strings.Contains(out, `"events"`) || strings.Contains(out, "token.created") {
		t.Fatalf("audit --json: %d %q", code, out)
	}
	// Errors name their cause.
	for _, c := range []struct {
		args []string
		code int
		msg  string
	}{
		{[]string{"tokens", "create", "--project", "acme", "--scope", "admin"}, 2, `--scope must be read or write, not "admin"`},
		{[]string{"tokens", "create", "--scope", "read"}, 2, "--project is required"},
		{[]string{"tokens", "revoke"}, 2, "--id is required"},
		{[]string{"tokens", "revoke", "--id", "tok_0000000000000000"}, 1, "404 not_found"},
		{[]string{"tokens", "frobnicate"}, 2, `unknown command "frobnicate"`},
		{[]string{"audit", "--limit", "0"}, 2, "--limit must be from 1 to 1000"},
		{[]string{"audit", "--action", "key.exploded"}, 1, "400 invalid_request"},
		{[]string{"audit", "--since", "yesterday"}, 1, "since must be an RFC 3339 time"},
		{[]string{"audit", "extra"}, 2, `unexpected argument "extra"`},
	} {
		code, _, errs := runCLI(t, append(c.args, adm...)...)
		if code != c.code || !strings.Contains(errs, c.msg) {
			t.Errorf("%v: %d %q, want %d and %q", c.args, code, errs, c.code, c.msg)
		}
	}
	if code, out, _ := runCLI(t, "tokens", "--help"); code != 0 || !strings.Contains(out, "create") {
		t.Fatalf("tokens --help: %d %q", code, out)
	}
	if code, _, errs := runCLI(t, "audit", "--help"); code != 0 || !strings.Contains(errs, "--since") {
		t.Fatalf("audit --help: %d %q", code, errs)
	}
}
