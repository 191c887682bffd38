package server

import (
	"context"
	"crypto/tls"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/jwtgate/jwtgate/engine/enginetest"
	"github.com/jwtgate/jwtgate/internal/tlstest"
)

// httpsGet sends one request on a new connection and returns the status,
// the server certificate's CommonName and the body.
func httpsGet(t *testing.T, cfg *tls.Config, url string, headers ...string) (int, string, string, error) {
	t.Helper()
	c := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: cfg, DisableKeepAlives: true}}
	req, err := http.NewRequest("GET", url, nil)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	resp, err := c.Do(req)
	if err != nil {
		return 0, "", "", err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	cn := ""
	if resp.TLS != nil && len(resp.TLS.PeerCertificates) > 0 {
		cn = resp.TLS.PeerCertificates[0].Subject.CommonName
	}
	return resp.StatusCode, cn, string(b), nil
}

func TestTLSVerifyAndGRPCListeners(t *testing.T) {
	dir := t.TempDir()
	ca := tlstest.NewCA(t, "test CA")
	cert, key := ca.Server(t, "jwtgate-one").Write(t, dir, "verify")
	ts := startServer(t, Config{GRPCAddr: "127.0.0.1:0", TLS: &TLSFiles{CertFile: cert, KeyFile: key}})
	a := enginetest.Key("rsa2048-a")
	ts.addKey("myapp", a, "k1", "") // the admin listener stays plain HTTP
	tok := token(a, "k1", "myapp", now(), 300, nil)
	base := "https://" + ts.srv.Addr()

	st, cn, body, err := httpsGet(t, tlstest.ClientConfig(ca, nil), base+"/v1/verify", "Authorization", "Bearer "+tok)
	if err != nil || st != 200 || cn != "jwtgate-one" || !strings.Contains(body, `"valid":true`) {
		t.Fatalf("https verify: %d %q %s %v", st, cn, body, err)
	}
	// Plain HTTP on the TLS port gets no verdict.
	if r, err := http.Get("http://" + ts.srv.Addr() + "/v1/verify"); err == nil {
		b, _ := io.ReadAll(r.Body)
		r.Body.Close()
		if r.StatusCode == 200 || r.StatusCode == 401 {
			t.Fatalf("plain HTTP on the TLS listener: %d %s", r.StatusCode, b)
		}
	}
	// TLS 1.1 and older are refused.
	old := tlstest.ClientConfig(ca, nil)
	old.MinVersion, old.MaxVersion = tls.VersionTLS10, tls.VersionTLS11
	if _, _, _, err := httpsGet(t, old, base+"/healthz"); err == nil {
		t.Fatal("a TLS 1.1 client was served")
	}
	// TLS 1.2 exactly is served.
	v12 := tlstest.ClientConfig(ca, nil)
	v12.MaxVersion = tls.VersionTLS12
	if st, _, _, err := httpsGet(t, v12, base+"/healthz"); err != nil || st != 200 {
		t.Fatalf("TLS 1.2 client: %d %v", st, err)
	}

	// The gRPC listener serves TLS with the same certificate.
	cc := grpcConn(t, ts.srv.GRPCAddr(), grpc.WithTransportCredentials(credentials.NewTLS(tlstest.ClientConfig(ca, nil))))
	resp := check(t, authv3.NewAuthorizationClient(cc), checkReq("/", map[string]string{"authorization": "Bearer " + tok}))
	if codes.Code(resp.GetStatus().GetCode()) != codes.OK {
		t.Fatalf("gRPC over TLS: %v", resp.GetStatus())
	}
	plain := authv3.NewAuthorizationClient(grpcConn(t, ts.srv.GRPCAddr(), grpc.WithTransportCredentials(insecure.NewCredentials())))
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if _, err := plain.Check(ctx, checkReq("/", nil)); err == nil {
		t.Fatal("plaintext gRPC was served on the TLS listener")
	}
}

// Replacing the files is noticed by the watcher; ReloadTLS (SIGHUP) reloads
// at once; a broken replacement keeps the old certificate.
func TestTLSReload(t *testing.T) {
	dir := t.TempDir()
	ca := tlstest.NewCA(t, "test CA")
	cert, key := ca.Server(t, "one").Write(t, dir, "verify")
	ts := startServer(t, Config{TLS: &TLSFiles{CertFile: cert, KeyFile: key}, TLSReloadInterval: 50 * time.Millisecond})
	cfg := tlstest.ClientConfig(ca, nil)
	url := "https://" + ts.srv.Addr() + "/healthz"
	servedCN := func() string {
		t.Helper()
		st, cn, _, err := httpsGet(t, cfg, url)
		if err != nil || st != 200 {
			t.Fatalf("healthz: %d %v", st, err)
		}
		return cn
	}
	waitCN := func(want string) {
		t.Helper()
		deadline := time.Now().Add(5 * time.Second)
		for servedCN() != want {
			if time.Now().After(deadline) {
				t.Fatalf("still serving %q, want %q", servedCN(), want)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	if cn := servedCN(); cn != "one" {
		t.Fatalf("serving %q", cn)
	}
	// A long-lived connection opened before the change.
	keep := &http.Client{Transport: &http.Transport{TLSClientConfig: cfg}}
	if r, err := keep.Get(url); err != nil {
		t.Fatal(err)
	} else {
		io.Copy(io.Discard, r.Body)
		r.Body.Close()
	}

	ca.Server(t, "two").Write(t, dir, "verify")
	waitCN("two")
	if r, err := keep.Get(url); err != nil || r.StatusCode != 200 {
		t.Fatalf("established connection after reload: %v", err)
	} else {
		if cn := r.TLS.PeerCertificates[0].Subject.CommonName; cn != "one" {
			t.Fatalf("established connection changed certificate to %q", cn)
		}
		r.Body.Close()
	}

	// A broken replacement: the previous certificate stays, the error is
	// logged and returned by ReloadTLS.
	if err := os.WriteFile(key, []byte("not a key"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := ts.srv.ReloadTLS(); err == nil || !strings.Contains(err.Error(), cert) {
		t.Fatalf("ReloadTLS with a broken key: %v", err)
	}
	time.Sleep(150 * time.Millisecond)
	if cn := servedCN(); cn != "two" {
		t.Fatalf("after a failed reload serving %q, want the previous %q", cn, "two")
	}
	if !strings.Contains(ts.logs.String(), "TLS certificate reload failed") {
		t.Fatalf("failed reload not logged:\n%s", ts.logs)
	}
}

// ReloadTLS (what SIGHUP calls) picks up new files without waiting for the
// watcher.
func TestTLSReloadNow(t *testing.T) {
	dir := t.TempDir()
	ca := tlstest.NewCA(t, "test CA")
	cert, key := ca.Server(t, "one").Write(t, dir, "admin")
	ts := startServer(t, Config{AdminTLS: &TLSFiles{CertFile: cert, KeyFile: key}, TLSReloadInterval: time.Hour})
	url := "https://" + ts.srv.AdminAddr() + "/v1/projects/myapp/keys"
	cfg := tlstest.ClientConfig(ca, nil)
	if st, cn, _, err := httpsGet(t, cfg, url, "Authorization", "Bearer "+testAdminToken); err != nil || st != 200 || cn != "one" {
		t.Fatalf("admin over TLS: %d %q %v", st, cn, err)
	}
	ca.Server(t, "two").Write(t, dir, "admin")
	if err := ts.srv.ReloadTLS(); err != nil {
		t.Fatal(err)
	}
	if _, cn, _, err := httpsGet(t, cfg, url, "Authorization", "Bearer "+testAdminToken); err != nil || cn != "two" {
		t.Fatalf("after ReloadTLS: %q %v", cn, err)
	}
}

func TestTLSAdminClientCertificates(t *testing.T) {
	dir := t.TempDir()
	ca := tlstest.NewCA(t, "server CA")
	clients := tlstest.NewCA(t, "client CA")
	cert, key := ca.Server(t, "admin").Write(t, dir, "admin")
	caFile := clients.WriteCA(t, dir, "clients.pem")
	ts := startServer(t, Config{AdminTLS: &TLSFiles{CertFile: cert, KeyFile: key, ClientCAFile: caFile}})
	url := "https://" + ts.srv.AdminAddr() + "/v1/projects/myapp/keys"
	auth := []string{"Authorization", "Bearer " + testAdminToken}

	if st, _, _, err := httpsGet(t, tlstest.ClientConfig(ca, clients.Client(t, "ops")), url, auth...); err != nil || st != 200 {
		t.Fatalf("with a client certificate: %d %v", st, err)
	}
	if st, _, _, err := httpsGet(t, tlstest.ClientConfig(ca, nil), url, auth...); err == nil {
		t.Fatalf("served without a client certificate: %d", st)
	}
	stranger := tlstest.NewCA(t, "other CA")
	if st, _, _, err := httpsGet(t, tlstest.ClientConfig(ca, stranger.Client(t, "mallory")), url, auth...); err == nil {
		t.Fatalf("served a client certificate from another CA: %d", st)
	}
	// The verify listener is not affected.
	if r := do(t, "GET", ts.base+"/healthz", nil); r.Status != 200 {
		t.Fatalf("verify listener: %d", r.Status)
	}
}

func TestTLSConfigErrors(t *testing.T) {
	dir := t.TempDir()
	ca := tlstest.NewCA(t, "CA")
	cert, key := ca.Server(t, "x").Write(t, dir, "x")
	caFile := ca.WriteCA(t, dir, "ca.pem")
	missing := filepath.Join(dir, "missing.crt")
	for _, tc := range []struct {
		name string
		cfg  Config
		want string
	}{
		{"missing cert", Config{TLS: &TLSFiles{CertFile: missing, KeyFile: key}}, missing},
		{"cert without key", Config{TLS: &TLSFiles{CertFile: cert}}, "both a certificate file and a key file"},
		{"key not matching", Config{AdminTLS: &TLSFiles{CertFile: cert, KeyFile: writeFile(t, dir, "other.key", ca.Server(t, "y").KeyPEM)}}, "private key does not match"},
		{"client CA without admin TLS", Config{AdminTLS: &TLSFiles{ClientCAFile: caFile}}, "needs the admin listener's TLS certificate"},
		{"client CA on the verify listener", Config{TLS: &TLSFiles{CertFile: cert, KeyFile: key, ClientCAFile: caFile}}, "admin listener only"},
		{"client CA not PEM", Config{AdminTLS: &TLSFiles{CertFile: cert, KeyFile: key, ClientCAFile: key}}, "holds no PEM certificate"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tc.cfg.Store = failingStore{}
			tc.cfg.AdminToken = testAdminToken
			_, err := New(tc.cfg)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("New: %v; want an error naming %q", err, tc.want)
			}
		})
	}
}

func writeFile(t *testing.T, dir, name string, b []byte) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, b, 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}
