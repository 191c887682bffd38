package server

import (
	"context"
	"encoding/json"
	"path/filepath"
	"testing"
	"time"

	"github.com/jwtgate/jwtgate/engine"
	"github.com/jwtgate/jwtgate/engine/enginetest"
	"github.com/jwtgate/jwtgate/store/boltstore"
)

// TestReRegisteredKIDStartsFresh: a kid deleted and registered again (another
// key, another project) does not inherit the old key's verified_count and
// last_used_at — neither what the store recorded nor what the server still
// had counted in memory, unflushed, when the old key was deleted. Over the
// real server, on the embedded bbolt store and on the memory store.
func TestReRegisteredKIDStartsFresh(t *testing.T) {
	for name, open := range map[string]func(t *testing.T) engine.KeyStore{
		"bolt": func(t *testing.T) engine.KeyStore {
			st, err := boltstore.Open(filepath.Join(t.TempDir(), "keys.db"))
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { st.Close() })
			return st
		},
		"memory": func(*testing.T) engine.KeyStore { return engine.NewMemoryStore() },
	} {
		t.Run(name, func(t *testing.T) {
			// Flushes happen only when the test asks for them.
			ts := startServer(t, Config{Store: open(t), UsageFlushInterval: time.Hour})
			flush := func() {
				t.Helper()
				if err := ts.srv.Verifier().FlushUsage(context.Background()); err != nil {
					t.Fatal(err)
				}
			}
			oldPriv, newPriv := enginetest.Key("rsa2048-a"), enginetest.Key("rsa2048-b")
			ts.addKey("old-proj", oldPriv, "reused", "old")
			oldTok := enginetest.SignRS256(oldPriv, enginetest.Header("reused"), enginetest.Claims("old-proj", time.Now().Unix(), 300))
			// Some usage reaches the store, more stays counted in memory.
			for range 3 {
				if r := ts.verify(oldTok); r.Status != 200 {
					t.Fatalf("old key: %d %s", r.Status, r.Body)
				}
			}
			flush()
			for range 4 {
				if r := ts.verify(oldTok); r.Status != 200 {
					t.Fatalf("old key: %d %s", r.Status, r.Body)
				}
			}
			if k := ts.adminDo("GET", "/v1/projects/old-proj/keys/reused", nil).JSON(t); k["verified_count"] != float64(7) {
				t.Fatalf("old key's usage before deletion: %v", k)
			}
			if r := ts.adminDo("DELETE", "/v1/projects/old-proj/keys/reused?force=true", nil); r.Status != 204 {
				t.Fatalf("delete: %d %s", r.Status, r.Body)
			}
			fresh := func(when string) {
				t.Helper()
				k := ts.adminDo("GET", "/v1/projects/new-proj/keys/reused", nil).JSON(t)
				if k["verified_count"] != float64(0) || k["last_used_at"] != nil {
					t.Fatalf("%s: the re-registered kid inherited usage: verified_count=%v last_used_at=%v", when, k["verified_count"], k["last_used_at"])
				}
			}
			created := ts.addKey("new-proj", newPriv, "reused", "new")
			if created["verified_count"] != float64(0) || created["last_used_at"] != nil {
				t.Fatalf("key object at registration: %v", created)
			}
			fresh("before a flush")
			flush()
			fresh("after a flush")
			var list struct{ Keys []map[string]any }
			if err := json.Unmarshal(ts.adminDo("GET", "/v1/projects/new-proj/keys", nil).Body, &list); err != nil {
				t.Fatal(err)
			}
			if len(list.Keys) != 1 || list.Keys[0]["verified_count"] != float64(0) || list.Keys[0]["last_used_at"] != nil {
				t.Fatalf("list after re-registration: %v", list.Keys)
			}
			// The new key counts its own verifications only.
			newTok := enginetest.SignRS256(newPriv, enginetest.Header("reused"), enginetest.Claims("new-proj", time.Now().Unix(), 300))
			if r := ts.verify(newTok); r.Status != 200 {
				t.Fatalf("new key: %d %s", r.Status, r.Body)
			}
			if r := ts.verify(oldTok); r.Status != 401 {
				t.Fatalf("old token under the new key: %d %s", r.Status, r.Body)
			}
			flush()
			if k := ts.adminDo("GET", "/v1/projects/new-proj/keys/reused", nil).JSON(t); k["verified_count"] != float64(1) || k["last_used_at"] == nil {
				t.Fatalf("new key's own usage: %v", k)
			}
		})
	}
}
