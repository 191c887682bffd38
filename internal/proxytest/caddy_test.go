package proxytest

import (
	"os"
	"path/filepath"
	"testing"
)

// EnvCaddy names a Caddy binary (make test-gateways builds one from its Go
// module); EnvRequireCaddy=1 makes a missing one a failure.
const (
	EnvCaddy        = "JWTGATE_CADDY"
	EnvRequireCaddy = "JWTGATE_REQUIRE_CADDY"
)

// Caddy forward_auth in front of jwtgate, with docs/examples/Caddyfile.
func TestCaddyForwardAuth(t *testing.T) {
	bin := Binary(t, "caddy", EnvCaddy, EnvRequireCaddy, "Run make test-gateways, which builds it from its Go module.")
	srv := startJWTGate(t)
	api := StartAPI(t)
	port := FreePort(t)
	cfg := Rewrite(t, Example(t, "Caddyfile"),
		"forward_auth "+ExampleJWTGate+" {", "forward_auth "+srv.Addr()+" {",
		"reverse_proxy "+ExampleAPI, "reverse_proxy "+api.Addr,
		":"+ExamplePort+" {", ":"+port+" {")
	// The harness's global options: no admin endpoint, loopback only.
	cfg = "{\n\tadmin off\n\tdefault_bind 127.0.0.1\n}\n\n" + cfg
	dir := t.TempDir()
	file := filepath.Join(dir, "Caddyfile")
	if err := os.WriteFile(file, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Setenv("HOME", dir) // Caddy's data and config directories
	t.Setenv("XDG_DATA_HOME", dir)
	t.Setenv("XDG_CONFIG_HOME", dir)
	Start(t, "127.0.0.1:"+port, bin, "run", "--config", file, "--adapter", "caddyfile")
	checkProxy(t, "http://127.0.0.1:"+port, api, true)
}
