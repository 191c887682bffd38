// Package servertest starts a real jwtgate server for the tests of other
// packages (the load generator, the PostgreSQL multi-node tests): both
// listeners on 127.0.0.1:0, shut down when the test ends.
package servertest

import (
	"context"
	"testing"
	"time"

	"github.com/jwtgate/jwtgate/server"
)

// Start builds and starts a server from cfg. Empty Addr/AdminAddr become
// 127.0.0.1:0 and an empty DataDir a temporary directory; the server is
// shut down (drained) when the test ends.
func Start(t testing.TB, cfg server.Config) *server.Server {
	t.Helper()
	if cfg.Addr == "" {
		cfg.Addr = "127.0.0.1:0"
	}
	if cfg.AdminAddr == "" {
		cfg.AdminAddr = "127.0.0.1:0"
	}
	if cfg.DataDir == "" {
		cfg.DataDir = t.TempDir()
	}
	srv, err := server.New(cfg)
	if err != nil {
		t.Fatalf("server.New: %v", err)
	}
	if err := srv.Start(); err != nil {
		t.Fatalf("server Start: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = srv.Shutdown(ctx)
	})
	return srv
}
