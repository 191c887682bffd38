package main

import (
	"crypto/tls"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/jwtgate/jwtgate/internal/tlstest"
)

// jwtgate serve with TLS on both listeners and client certificates on the
// admin one; `jwtgate keys` over https with --ca-file (or
// JWTGATE_CA_FILE) and a client certificate; SIGHUP reloads certificates.
func TestServeTLSKeysAndSIGHUP(t *testing.T) {
	dir := t.TempDir()
	ca := tlstest.NewCA(t, "cli CA")
	clients := tlstest.NewCA(t, "cli client CA")
	vcert, vkey := ca.Server(t, "verify-one").Write(t, dir, "verify")
	acert, akey := ca.Server(t, "admin-one").Write(t, dir, "admin")
	caFile := ca.WriteCA(t, dir, "ca.pem")
	clientCA := clients.WriteCA(t, dir, "clients.pem")
	ccert, ckey := clients.Client(t, "ops").Write(t, dir, "client")
	c := startChild(t, filepath.Join(dir, "data"), nil,
		"--tls-cert", vcert, "--tls-key", vkey, "--admin-tls-cert", acert, "--admin-tls-key", akey,
		"--admin-client-ca", clientCA, "--tls-reload-interval", "1h")
	tok := c.token(t)
	base := []string{"keys", "list", "--project", "acme", "--admin-url", "https://" + c.admin, "--admin-token", tok}

	code, out, errs := runCLI(t, append(base, "--ca-file", caFile, "--client-cert", ccert, "--client-key", ckey)...)
	if code != 0 || !strings.Contains(out, `"keys"`) {
		t.Fatalf("keys list over mTLS: exit %d\n%s\n%s", code, out, errs)
	}
	t.Setenv("JWTGATE_CA_FILE", caFile)
	if code, _, errs := runCLI(t, append(base, "--client-cert", ccert, "--client-key", ckey)...); code != 0 {
		t.Fatalf("keys list with JWTGATE_CA_FILE: exit %d\n%s", code, errs)
	}
	if code, _, errs := runCLI(t, base...); code == 0 || !strings.Contains(errs, "certificate") {
		t.Fatalf("keys list without a client certificate: exit %d\n%s", code, errs)
	}
	t.Setenv("JWTGATE_CA_FILE", "")
	if code, _, errs := runCLI(t, append(base, "--client-cert", ccert, "--client-key", ckey)...); code == 0 || !strings.Contains(errs, "certificate") {
		t.Fatalf("keys list without the CA: exit %d\n%s", code, errs)
	}
	if code, _, errs := runCLI(t, append(base, "--ca-file", ckey)...); code != exitUsage || !strings.Contains(errs, "--ca-file") {
		t.Fatalf("keys list with a key as --ca-file: exit %d\n%s", code, errs)
	}

	peer := func(addr string, client *tlstest.Pair) string {
		t.Helper()
		conn, err := tls.Dial("tcp", addr, tlstest.ClientConfig(ca, client))
		if err != nil {
			t.Fatalf("dial %s: %v", addr, err)
		}
		defer conn.Close()
		return conn.ConnectionState().PeerCertificates[0].Subject.CommonName
	}
	client := &tlstest.Pair{}
	*client = *clients.Client(t, "ops2")
	if cn := peer(c.verify, nil); cn != "verify-one" {
		t.Fatalf("verify listener serves %q", cn)
	}
	ca.Server(t, "verify-two").Write(t, dir, "verify")
	ca.Server(t, "admin-two").Write(t, dir, "admin")
	if err := c.cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for peer(c.verify, nil) != "verify-two" || peer(c.admin, client) != "admin-two" {
		if time.Now().After(deadline) {
			t.Fatalf("certificates not reloaded on SIGHUP:\n%s", c.logs())
		}
		time.Sleep(50 * time.Millisecond)
	}
	if !strings.Contains(c.logs(), "SIGHUP") {
		t.Fatalf("SIGHUP not logged:\n%s", c.logs())
	}
}

func TestServeTLSFlagErrors(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--tls-cert", "x.pem"}, "--tls-cert and --tls-key go together"},
		{[]string{"--admin-client-ca", "ca.pem"}, "--admin-client-ca needs them"},
		{[]string{"--tls-reload-interval", "0s"}, "--tls-reload-interval"},
	} {
		code, _, errs := runCLI(t, append([]string{"serve", "--data-dir", t.TempDir()}, tc.args...)...)
		if code != exitUsage || !strings.Contains(errs, tc.want) {
			t.Errorf("%v: exit %d, want %d with %q:\n%s", tc.args, code, exitUsage, tc.want, errs)
		}
	}
}
