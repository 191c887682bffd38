package pgstore_test

import (
	"strings"
	"testing"
	"time"

	"github.com/jwtgate/jwtgate/engine"
	"github.com/jwtgate/jwtgate/engine/enginetest"
	"github.com/jwtgate/jwtgate/internal/lifecycletest"
	"github.com/jwtgate/jwtgate/internal/pgtest"
)

// TestLifecycle runs the rotation guardrail, scoped admin token and audit
// trail tests over a real server on the PostgreSQL store.
func TestLifecycle(t *testing.T) {
	lifecycletest.Run(t, func(t *testing.T) engine.KeyStore { return open(t, pgtest.Start(t)) })
}

// TestLifecycleTwoNodes: two nodes on one database. Usage counted on node A
// blocks the deletion and deactivation on node B (the guardrail reads the
// usage every node flushes to PostgreSQL); a scoped token made on one node
// works on the other and its revocation is in force there at once; both
// nodes write one audit trail.
func TestLifecycleTwoNodes(t *testing.T) {
	dsn := pgtest.Start(t)
	a := lifecycletest.Start(t, open(t, dsn))
	b := lifecycletest.Start(t, open(t, dsn))
	priv := enginetest.Key("rsa2048-a")
	root := lifecycletest.RootToken
	lifecycletest.Want(t, "add on A", a.AddKey(root, "acme", priv, "live"), 201, "")
	// B has not seen any use yet: it would allow the deletion. Check, then
	// use the key on A only.
	if k := lifecycletest.Want(t, "get on B", b.Root("GET", "/v1/projects/acme/keys/live", nil), 200, ""); k["last_used_at"] != nil {
		t.Fatalf("unused key has last_used_at: %v", k)
	}
	a.VerifyOK(priv, "live", "acme")
	// A flushes its usage every FlushInterval; B then sees it in the store.
	deadline := time.Now().Add(3 * time.Second)
	for {
		k := lifecycletest.Want(t, "get on B", b.Root("GET", "/v1/projects/acme/keys/live", nil), 200, "")
		if k["last_used_at"] != nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("node B never saw node A's usage")
		}
		time.Sleep(10 * time.Millisecond)
	}
	lifecycletest.CheckInUse(t, "DELETE on B of a key used on A", b.Root("DELETE", "/v1/projects/acme/keys/live", nil))
	lifecycletest.CheckInUse(t, "PATCH inactive on B of a key used on A", b.Root("PATCH", "/v1/projects/acme/keys/live", map[string]any{"status": "inactive"}))
	a.VerifyOK(priv, "live", "acme")
	b.VerifyOK(priv, "live", "acme")

	// Scoped tokens and the audit trail are shared.
	m := lifecycletest.Want(t, "create token on A", a.Root("POST", "/v1/tokens", map[string]any{"project": "acme", "scope": "write"}), 201, "")
	tok, id := m["token"].(string), m["id"].(string)
	lifecycletest.Want(t, "token on B", b.Do(tok, "GET", "/v1/projects/acme/keys", nil), 200, "")
	lifecycletest.Want(t, "forced delete on B with the token", b.Do(tok, "DELETE", "/v1/projects/acme/keys/live?force=true", nil), 204, "")
	lifecycletest.Want(t, "revoke on B", b.Root("DELETE", "/v1/tokens/"+id, nil), 204, "")
	lifecycletest.Want(t, "revoked token on A", a.Do(tok, "GET", "/v1/projects/acme/keys", nil), 401, "unauthorized")
	ev, _ := a.Audit("project=acme")
	var got []string
	for _, e := range ev {
		s := e["action"].(string)
		if e["forced"] == true {
			s += " forced by " + e["actor"].(map[string]any)["id"].(string)
		}
		got = append(got, s)
	}
	want := []string{"token.revoked", "key.deleted forced by " + id, "token.created", "key.created"}
	if strings.Join(got, "|") != strings.Join(want, "|") {
		t.Fatalf("audit on A: %q, want %q", got, want)
	}
}
