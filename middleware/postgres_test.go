package middleware_test

import (
	"context"
	"log/slog"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/jwtgate/jwtgate/engine"
	"github.com/jwtgate/jwtgate/engine/enginetest"
	"github.com/jwtgate/jwtgate/internal/apitest"
	"github.com/jwtgate/jwtgate/internal/pgtest"
	"github.com/jwtgate/jwtgate/middleware"
	"github.com/jwtgate/jwtgate/server"
	"github.com/jwtgate/jwtgate/server/servertest"
	"github.com/jwtgate/jwtgate/store/pgstore"
)

func openPG(t *testing.T, dsn, name string) *pgstore.Store {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	st, err := pgstore.Open(ctx, dsn, pgstore.WithApplicationName(name))
	if err != nil {
		t.Fatalf("pgstore.Open: %v", err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

// An embedded verifier on the shared PostgreSQL registry (Example_postgres)
// follows changes made through a jwtgate node: a key registered there
// verifies here, and once deleted there it is refused here.
func TestEmbeddedVerifierFollowsRegistry(t *testing.T) {
	dsn := pgtest.Start(t)
	const admin = "middleware-pg-admin-token-0123456789"
	node := servertest.Start(t, server.Config{Store: openPG(t, dsn, "jwtgate-node"), AdminToken: admin, Logger: slog.New(slog.DiscardHandler)})
	adminURL := "http://" + node.AdminAddr()

	st := openPG(t, dsn, "embedded")
	v, err := engine.New(st)
	if err != nil {
		t.Fatal(err)
	}
	defer v.Close()
	hs := httptest.NewServer(middleware.New(v).Handler(next))
	defer hs.Close()

	priv := enginetest.Key("rsa2048-a")
	r := apitest.AdminDo(t, adminURL, admin, "POST", "/v1/projects/myapp/keys",
		map[string]any{"kid": "k1", "label": "shared", "public_key": string(enginetest.PublicPEM(&priv.PublicKey))})
	if r.Status != 201 {
		t.Fatalf("register on the node: %d %s", r.Status, r.Body)
	}
	tok := enginetest.SignRS256(priv, enginetest.Header("k1"), enginetest.Claims("myapp", time.Now().Unix(), 300))
	// The registration reaches the embedded verifier through the store's
	// change feed: bounded, not instant.
	deadline := time.Now().Add(3 * time.Second) // generous: a shared CI machine
	for {
		r := apitest.Do(t, "GET", hs.URL+"/api", nil, "Authorization", "Bearer "+tok)
		if r.Status == 200 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("embedded verifier, key registered on the node: %d %s", r.Status, r.Body)
		}
		time.Sleep(10 * time.Millisecond)
	}
	// The embedded verifier has the key (and the token) cached now. Delete
	// it through the node.
	if r := apitest.AdminDo(t, adminURL, admin, "DELETE", "/v1/projects/myapp/keys/k1?force=true", nil); r.Status != 204 {
		t.Fatalf("delete on the node: %d %s", r.Status, r.Body)
	}
	deadline = time.Now().Add(3 * time.Second)
	for {
		r := apitest.Do(t, "GET", hs.URL+"/api", nil, "Authorization", "Bearer "+tok)
		if r.Status == 401 {
			if m := r.JSON(t); m["error"] != "unknown_kid" {
				t.Fatalf("after delete: %s", r.Body)
			}
			break
		}
		if r.Status != 200 || time.Now().After(deadline) {
			t.Fatalf("embedded verifier still answers %d %s after the key was deleted on the node", r.Status, r.Body)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
