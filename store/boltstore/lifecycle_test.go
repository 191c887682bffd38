package boltstore_test

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/jwtgate/jwtgate/engine"
	"github.com/jwtgate/jwtgate/engine/enginetest"
	"github.com/jwtgate/jwtgate/internal/lifecycletest"
	"github.com/jwtgate/jwtgate/store/boltstore"
)

// TestLifecycle runs the rotation guardrail, scoped admin token and audit
// trail tests over a real server on the bbolt store.
func TestLifecycle(t *testing.T) {
	lifecycletest.Run(t, func(t *testing.T) engine.KeyStore {
		s, err := boltstore.Open(filepath.Join(t.TempDir(), "keys.db"))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		return s
	})
}

// TestLifecycleSurvivesRestart: the audit trail and scoped tokens are on
// disk: a server restarted on the same file still has them.
func TestLifecycleSurvivesRestart(t *testing.T) {
	path := filepath.Join(t.TempDir(), "keys.db")
	s1, err := boltstore.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	n1 := lifecycletest.Start(t, s1)
	lifecycletest.Want(t, "add", n1.AddKey(lifecycletest.RootToken, "acme", enginetest.Key("rsa2048-a"), "k1"), 201, "")
	m := lifecycletest.Want(t, "token", n1.Root("POST", "/v1/tokens", map[string]any{"project": "acme", "scope": "read"}), 201, "")
	tok := m["token"].(string)
	if err := n1.Srv.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	if err := s1.Close(); err != nil {
		t.Fatal(err)
	}
	s2, err := boltstore.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s2.Close() })
	n2 := lifecycletest.Start(t, s2)
	if ev, _ := n2.Audit(""); len(ev) != 2 || ev[0]["action"] != "token.created" || ev[1]["action"] != "key.created" {
		t.Fatalf("audit after restart: %v", ev)
	}
	lifecycletest.Want(t, "token after restart", n2.Do(tok, "GET", "/v1/projects/acme/keys", nil), 200, "")
}
