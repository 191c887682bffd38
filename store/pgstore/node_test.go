package pgstore_test

import (
	"bytes"
	"context"
	"crypto/rsa"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jwtgate/jwtgate/engine"
	"github.com/jwtgate/jwtgate/engine/enginetest"
	"github.com/jwtgate/jwtgate/internal/apitest"
	"github.com/jwtgate/jwtgate/internal/pgtest"
	"github.com/jwtgate/jwtgate/server"
	"github.com/jwtgate/jwtgate/server/servertest"
	"github.com/jwtgate/jwtgate/store/pgstore"
)

const adminToken = "test-admin-token-0123456789abcdef"

// propagationBound is how long a change made on one node may take to be in
// force on another in these tests (generous: CI machines are shared; the
// benchmark measures the real figure).
const propagationBound = 3 * time.Second

// node is a real jwtgate server over its own pgstore.
type node struct {
	t     *testing.T
	name  string
	st    *pgstore.Store
	srv   *server.Server
	base  string
	admin string
}

func startNode(t *testing.T, dsn, name string, opts ...pgstore.Option) *node {
	t.Helper()
	return startNodeWith(t, dsn, name, nil, opts...)
}

func startNodeWith(t *testing.T, dsn, name string, engineOpts []engine.Option, opts ...pgstore.Option) *node {
	t.Helper()
	opts = append([]pgstore.Option{pgstore.WithApplicationName("jwtgate-" + name)}, opts...)
	st := open(t, dsn, opts...)
	srv := servertest.Start(t, server.Config{
		Store: st, AdminToken: adminToken,
		Logger: slog.New(slog.DiscardHandler), UsageFlushInterval: 50 * time.Millisecond,
		EngineOptions: engineOpts,
	})
	return &node{t: t, name: name, st: st, srv: srv, base: "http://" + srv.Addr(), admin: "http://" + srv.AdminAddr()}
}

type response = apitest.Response

func do(t testing.TB, method, u string, body []byte, headers ...string) response {
	t.Helper()
	return apitest.Do(t, method, u, body, headers...)
}

func (n *node) adminDo(method, path string, body any) response {
	n.t.Helper()
	return apitest.AdminDo(n.t, n.admin, adminToken, method, path, body)
}

func (n *node) addKey(project string, priv *rsa.PrivateKey, kid string) response {
	n.t.Helper()
	body := map[string]any{"public_key": string(enginetest.PublicPEM(&priv.PublicKey)), "label": "key " + kid}
	if kid != "" {
		body["kid"] = kid
	}
	return n.adminDo("POST", "/v1/projects/"+project+"/keys", body)
}

func (n *node) setStatus(project, kid, status string) {
	n.t.Helper()
	// force: these tests are about propagation, not the rotation guardrail
	// (lifecycle_test.go tests that).
	if r := n.adminDo("PATCH", "/v1/projects/"+project+"/keys/"+kid+"?force=true", map[string]any{"status": status}); r.Status != 200 {
		n.t.Fatalf("%s: PATCH %s status=%s: %d %s", n.name, kid, status, r.Status, r.Body)
	}
}

func (n *node) verify(tok string) response {
	n.t.Helper()
	return do(n.t, "GET", n.base+"/v1/verify", nil, "Authorization", "Bearer "+tok)
}

// code is the verify outcome: "ok", an error code, or "http-<status>".
func (n *node) code(tok string) string {
	n.t.Helper()
	r := n.verify(tok)
	switch r.Status {
	case 200:
		return "ok"
	case 401:
		var m map[string]any
		_ = json.Unmarshal(r.Body, &m)
		s, _ := m["error"].(string)
		return s
	}
	return fmt.Sprintf("http-%d", r.Status)
}

// eventually waits until node n answers want for tok, within bound.
func (n *node) eventually(tok, want string, bound time.Duration) time.Duration {
	n.t.Helper()
	start := time.Now()
	var got string
	for time.Since(start) < bound {
		if got = n.code(tok); got == want {
			return time.Since(start)
		}
		time.Sleep(2 * time.Millisecond)
	}
	n.t.Fatalf("%s: verify gave %q for %v, want %q", n.name, got, bound, want)
	return 0
}

func tokenFor(priv *rsa.PrivateKey, kid, project string) string {
	return enginetest.SignRS256(priv, enginetest.Header(kid), enginetest.Claims(project, time.Now().Unix(), 300))
}

// TestAdminAPI runs every admin route over HTTP against a real server on
// the PostgreSQL store.
func TestAdminAPI(t *testing.T) {
	n := startNode(t, pgtest.Start(t), "admin")
	privA, privB := enginetest.Key("rsa2048-a"), enginetest.Key("rsa2048-b")

	// Add: PEM with a kid, PEM without (a kid is made), JWK.
	r := n.addKey("proj", privA, "k-a")
	if r.Status != 201 {
		t.Fatalf("POST: %d %s", r.Status, r.Body)
	}
	ka := r.JSON(t)
	if ka["kid"] != "k-a" || ka["project"] != "proj" || ka["status"] != "active" || ka["algorithm"] != "RS256" ||
		ka["bits"] != float64(2048) || ka["label"] != "key k-a" || ka["last_used_at"] != nil || ka["verified_count"] != float64(0) {
		t.Fatalf("key object: %v", ka)
	}
	r = n.addKey("proj", privB, "")
	if r.Status != 201 {
		t.Fatalf("POST without kid: %d %s", r.Status, r.Body)
	}
	generated, _ := r.JSON(t)["kid"].(string)
	if generated == "" {
		t.Fatal("no kid generated")
	}
	jwk := map[string]any{"kty": "RSA", "n": enginetest.B64(enginetest.Key("rsa3072").PublicKey.N.Bytes()), "e": "AQAB"}
	r = n.adminDo("POST", "/v1/projects/proj/keys", map[string]any{"jwk": jwk, "label": "from jwk", "kid": "k-jwk"})
	if r.Status != 201 || r.JSON(t)["bits"] != float64(3072) {
		t.Fatalf("POST jwk: %d %s", r.Status, r.Body)
	}

	// Refusals.
	for _, c := range []struct {
		name string
		body any
		want int
	}{
		{"kid taken (same project)", map[string]any{"public_key": string(enginetest.PublicPEM(&privB.PublicKey)), "kid": "k-a"}, 409},
		{"private key", map[string]any{"public_key": string(enginetest.PrivatePEM(privA))}, 400},
		{"not PEM", map[string]any{"public_key": "hello"}, 400},
		{"1024-bit key", map[string]any{"public_key": string(enginetest.PublicPEM(&enginetest.Key("rsa1024").PublicKey))}, 400},
		{"bad kid", map[string]any{"public_key": string(enginetest.PublicPEM(&privA.PublicKey)), "kid": "no/slash"}, 400},
		{"not JSON", "{", 400},
	} {
		if r := n.adminDo("POST", "/v1/projects/proj/keys", c.body); r.Status != c.want {
			t.Errorf("%s: %d %s, want %d", c.name, r.Status, r.Body, c.want)
		}
	}
	// A kid is unique across projects.
	if r := n.addKey("other", privA, "k-a"); r.Status != 409 {
		t.Errorf("kid of another project: %d %s, want 409", r.Status, r.Body)
	}
	if r := do(t, "GET", n.admin+"/v1/projects/proj/keys", nil); r.Status != 401 {
		t.Errorf("no admin token: %d", r.Status)
	}
	if r := do(t, "GET", n.admin+"/v1/projects/proj/keys", nil, "Authorization", "Bearer wrong"); r.Status != 401 {
		t.Errorf("wrong admin token: %d", r.Status)
	}

	// List: oldest first.
	r = n.adminDo("GET", "/v1/projects/proj/keys", nil)
	if r.Status != 200 {
		t.Fatalf("list: %d %s", r.Status, r.Body)
	}
	var list struct{ Keys []map[string]any }
	_ = json.Unmarshal(r.Body, &list)
	if len(list.Keys) != 3 || list.Keys[0]["kid"] != "k-a" || list.Keys[1]["kid"] != generated || list.Keys[2]["kid"] != "k-jwk" {
		t.Fatalf("list: %s", r.Body)
	}
	if r := n.adminDo("GET", "/v1/projects/nobody/keys", nil); r.Status != 200 || !strings.Contains(string(r.Body), `"keys":[]`) {
		t.Errorf("empty project list: %d %s", r.Status, r.Body)
	}

	// Get, and 404 for unknown kids and other projects' kids.
	if r := n.adminDo("GET", "/v1/projects/proj/keys/k-a", nil); r.Status != 200 || r.JSON(t)["kid"] != "k-a" {
		t.Errorf("get: %d %s", r.Status, r.Body)
	}
	if r := n.adminDo("GET", "/v1/projects/proj/keys/nope", nil); r.Status != 404 {
		t.Errorf("get unknown: %d", r.Status)
	}
	if r := n.adminDo("GET", "/v1/projects/other/keys/k-a", nil); r.Status != 404 {
		t.Errorf("get other project's kid: %d", r.Status)
	}

	// Verify, usage, patch.
	tok := tokenFor(privA, "k-a", "proj")
	for range 3 {
		if c := n.code(tok); c != "ok" {
			t.Fatalf("verify: %s", c)
		}
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		var count int64
		err := n.st.Pool().QueryRow(context.Background(), "SELECT verified_count FROM jwtgate_keys WHERE kid = 'k-a'").Scan(&count)
		if err == nil && count == 3 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("verified_count in PostgreSQL is %d (%v), want 3 after the usage flush", count, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if k := n.adminDo("GET", "/v1/projects/proj/keys/k-a", nil).JSON(t); k["verified_count"] != float64(3) || k["last_used_at"] == nil {
		t.Errorf("usage in key object: %v", k)
	}
	r = n.adminDo("PATCH", "/v1/projects/proj/keys/k-a?force=true", map[string]any{"label": "renamed", "status": "inactive"})
	if r.Status != 200 {
		t.Fatalf("patch: %d %s", r.Status, r.Body)
	}
	if k := r.JSON(t); k["label"] != "renamed" || k["status"] != "inactive" {
		t.Errorf("patched key: %v", k)
	}
	if c := n.code(tok); c != "key_inactive" {
		t.Errorf("verify after deactivation on the same node: %s", c)
	}
	if r := n.adminDo("PATCH", "/v1/projects/proj/keys/k-a", map[string]any{"status": "paused"}); r.Status != 400 {
		t.Errorf("patch bad status: %d", r.Status)
	}
	if r := n.adminDo("PATCH", "/v1/projects/proj/keys/nope", map[string]any{"label": "x"}); r.Status != 404 {
		t.Errorf("patch unknown: %d", r.Status)
	}
	if r := n.adminDo("PATCH", "/v1/projects/other/keys/k-a", map[string]any{"label": "x"}); r.Status != 404 {
		t.Errorf("patch other project's kid: %d", r.Status)
	}
	n.setStatus("proj", "k-a", "active")
	if c := n.code(tok); c != "ok" {
		t.Errorf("verify after reactivation: %s", c)
	}

	// Delete.
	if r := n.adminDo("DELETE", "/v1/projects/other/keys/k-a", nil); r.Status != 404 {
		t.Errorf("delete other project's kid: %d", r.Status)
	}
	if r := n.adminDo("DELETE", "/v1/projects/proj/keys/k-a?force=true", nil); r.Status != 204 {
		t.Fatalf("delete: %d %s", r.Status, r.Body)
	}
	if r := n.adminDo("DELETE", "/v1/projects/proj/keys/k-a", nil); r.Status != 404 {
		t.Errorf("delete again: %d", r.Status)
	}
	if c := n.code(tok); c != "unknown_kid" {
		t.Errorf("verify after delete: %s", c)
	}
	if r := n.adminDo("PUT", "/v1/projects/proj/keys/k-jwk", nil); r.Status != 405 || r.Header.Get("Allow") == "" {
		t.Errorf("wrong method: %d allow=%q", r.Status, r.Header.Get("Allow"))
	}

	// Health and metrics show the store.
	if r := do(t, "GET", n.base+"/readyz", nil); r.Status != 200 || strings.Contains(string(r.Body), "degraded") {
		t.Errorf("readyz: %d %s", r.Status, r.Body)
	}
	if r := do(t, "GET", n.admin+"/metrics", nil); !strings.Contains(string(r.Body), "jwtgate_store_connected 1") {
		t.Errorf("metrics lack jwtgate_store_connected 1:\n%s", r.Body)
	}
}

// TestTwoNodes: a change on node A is in force on node B within the bound.
func TestTwoNodes(t *testing.T) {
	dsn := pgtest.Start(t)
	a, b := startNode(t, dsn, "a"), startNode(t, dsn, "b")
	priv := enginetest.Key("rsa2048-a")
	tok := tokenFor(priv, "shared", "proj")

	// B first learns that the kid is unknown (and caches that).
	if c := b.code(tok); c != "unknown_kid" {
		t.Fatalf("before registration: %s", c)
	}
	if r := a.addKey("proj", priv, "shared"); r.Status != 201 {
		t.Fatalf("add on A: %d %s", r.Status, r.Body)
	}
	d := b.eventually(tok, "ok", propagationBound)
	t.Logf("registration on A in force on B after %v", d)
	b.verify(tok) // now cached in B's key LRU and token cache

	a.setStatus("proj", "shared", "inactive")
	d = b.eventually(tok, "key_inactive", propagationBound)
	t.Logf("deactivation on A in force on B after %v", d)

	a.setStatus("proj", "shared", "active")
	b.eventually(tok, "ok", propagationBound)

	if r := a.adminDo("DELETE", "/v1/projects/proj/keys/shared?force=true", nil); r.Status != 204 {
		t.Fatalf("delete on A: %d", r.Status)
	}
	d = b.eventually(tok, "unknown_kid", propagationBound)
	t.Logf("deletion on A in force on B after %v", d)

	// And the other way round.
	if r := b.addKey("proj", priv, "shared"); r.Status != 201 {
		t.Fatalf("add on B: %d %s", r.Status, r.Body)
	}
	a.eventually(tok, "ok", propagationBound)

	// Every change was notified: the polls of the change revision found
	// nothing missed (no cache was dropped for want of a notification).
	time.Sleep(1500 * time.Millisecond) // at least one poll after the last change
	for _, n := range []*node{a, b} {
		if m := metric(n.st, "jwtgate_store_missed_notifications_total"); m != "0" {
			t.Errorf("%s: %s missed notifications while listening", n.name, m)
		}
		if m := metric(n.st, "jwtgate_store_revision"); m == "0" || m == "" {
			t.Errorf("%s: change revision %q, want the revision of the last change", n.name, m)
		}
	}
}

// proxy is a TCP proxy to PostgreSQL that a test can cut: cutting closes
// every proxied connection and refuses new ones, as a network partition
// between one node and the database would. With refuseApp set it refuses
// only new connections whose startup message names that application_name
// (the tests' DSNs use sslmode=disable, so the startup message is the
// first thing a client sends).
type proxy struct {
	ln        net.Listener
	target    string
	mu        sync.Mutex
	cut       bool
	refuseApp string
	conns     map[net.Conn]struct{}
}

func newProxy(t *testing.T, dsn string) (*proxy, string) {
	t.Helper()
	u, err := url.Parse(dsn)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &proxy{ln: ln, target: u.Host, conns: map[net.Conn]struct{}{}}
	go p.serve()
	t.Cleanup(func() { ln.Close(); p.setCut(true) })
	u.Host = ln.Addr().String()
	return p, u.String()
}

func (p *proxy) serve() {
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		startup, err := readStartup(c)
		if err != nil {
			c.Close()
			continue
		}
		p.mu.Lock()
		if p.cut || p.refuseApp != "" && bytes.Contains(startup, []byte("application_name\x00"+p.refuseApp+"\x00")) {
			p.mu.Unlock()
			c.Close()
			continue
		}
		s, err := net.Dial("tcp", p.target)
		if err == nil {
			_, err = s.Write(startup)
		}
		if err != nil {
			p.mu.Unlock()
			c.Close()
			continue
		}
		p.conns[c], p.conns[s] = struct{}{}, struct{}{}
		p.mu.Unlock()
		go func() { io.Copy(s, c); s.Close(); c.Close() }()
		go func() { io.Copy(c, s); s.Close(); c.Close() }()
	}
}

// readStartup reads a PostgreSQL startup message (length-prefixed).
func readStartup(c net.Conn) ([]byte, error) {
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	defer c.SetReadDeadline(time.Time{})
	var hdr [4]byte
	if _, err := io.ReadFull(c, hdr[:]); err != nil {
		return nil, err
	}
	n := binary.BigEndian.Uint32(hdr[:])
	if n < 8 || n > 10000 {
		return nil, fmt.Errorf("startup message of %d bytes", n)
	}
	msg := make([]byte, n)
	copy(msg, hdr[:])
	_, err := io.ReadFull(c, msg[4:])
	return msg, err
}

func (p *proxy) refuse(app string) {
	p.mu.Lock()
	p.refuseApp = app
	p.mu.Unlock()
}

func (p *proxy) setCut(cut bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.cut = cut
	if cut {
		for c := range p.conns {
			c.Close()
		}
		clear(p.conns)
	}
}

// TestListenerConnectionKilled: node B's listener connection is terminated
// in PostgreSQL (pg_terminate_backend) and B cannot reconnect it, while its
// pool still works; keys change on A meanwhile. NOTIFY is only the wake-up:
// B finds every change by polling the change revision, within one poll
// (default 1 s; bounded here at 2.5 s), says it is degraded, and catches up
// with notifications again once its listener reconnects.
func TestListenerConnectionKilled(t *testing.T) {
	dsn := pgtest.Start(t)
	a := startNode(t, dsn, "a")
	px, viaProxy := newProxy(t, dsn)
	b := startNode(t, viaProxy, "b", pgstore.WithReconnectBackoff(50*time.Millisecond, 200*time.Millisecond))
	waitFor(t, "B listens", b.st.Connected)
	priv := enginetest.Key("rsa2048-a")
	kids := []string{"stay", "deactivated", "deleted", "gone-before"}
	toks := map[string]string{}
	for _, kid := range kids {
		if r := a.addKey("proj", priv, kid); r.Status != 201 {
			t.Fatalf("add %s: %d", kid, r.Status)
		}
		toks[kid] = tokenFor(priv, kid, "proj")
		b.eventually(toks[kid], "ok", propagationBound) // cached on B
	}
	tokNew := tokenFor(priv, "added-meanwhile", "proj")
	if c := b.code(tokNew); c != "unknown_kid" {
		t.Fatalf("unregistered kid: %s", c)
	}
	// A deletion B was told of before losing the connection stays in force.
	if r := a.adminDo("DELETE", "/v1/projects/proj/keys/gone-before?force=true", nil); r.Status != 204 {
		t.Fatal(r.Status)
	}
	b.eventually(toks["gone-before"], "unknown_kid", propagationBound)

	// Kill B's listener connection in PostgreSQL, and keep B's listener
	// from reconnecting (the proxy refuses its new connections; B's pool
	// still reaches the database).
	pid := b.st.ListenerPID()
	if pid == 0 {
		t.Fatal("B's listener has no backend PID")
	}
	var appName string
	if err := a.st.Pool().QueryRow(context.Background(), "SELECT application_name FROM pg_stat_activity WHERE pid = $1", int32(pid)).Scan(&appName); err != nil || appName != "jwtgate-b-listener" {
		t.Fatalf("pg_stat_activity for B's listener pid %d: %q %v", pid, appName, err)
	}
	px.refuse("jwtgate-b-listener")
	var killed bool
	if err := a.st.Pool().QueryRow(context.Background(), "SELECT pg_terminate_backend($1)", int32(pid)).Scan(&killed); err != nil || !killed {
		t.Fatalf("pg_terminate_backend: %v %v", killed, err)
	}
	waitFor(t, "B notices the lost listener connection", func() bool { return !b.st.Connected() })

	// Changes on A while B is not listening: B refuses the old keys and
	// accepts the new one within one poll, without a notification.
	const pollBound = 2500 * time.Millisecond
	start := time.Now()
	a.setStatus("proj", "deactivated", "inactive")
	if r := a.adminDo("DELETE", "/v1/projects/proj/keys/deleted?force=true", nil); r.Status != 204 {
		t.Fatal(r.Status)
	}
	if r := a.addKey("proj", priv, "added-meanwhile"); r.Status != 201 {
		t.Fatal(r.Status)
	}
	b.eventually(toks["deactivated"], "key_inactive", pollBound)
	b.eventually(toks["deleted"], "unknown_kid", pollBound)
	b.eventually(tokNew, "ok", pollBound)
	t.Logf("changes on A in force on B without notifications after %v", time.Since(start))
	if c := b.code(toks["stay"]); c != "ok" {
		t.Errorf("unchanged key while disconnected: %s", c)
	}
	if c := b.code(toks["gone-before"]); c == "ok" {
		t.Error("B accepted a key deleted before it lost its connection")
	}
	if b.st.Connected() {
		t.Fatal("B's listener reconnected: the test did not cut it")
	}
	// The public /readyz says only "degraded" (B still vouches for its
	// state: it polls); the cause is on the admin listener.
	r := do(t, "GET", b.base+"/readyz", nil)
	if r.Status != 200 || string(r.Body) != "degraded\n" {
		t.Errorf("readyz while disconnected: %d %s", r.Status, r.Body)
	}
	if r := b.adminDo("GET", "/v1/status", nil); r.Status != 200 || !strings.Contains(string(r.Body), `"state":"degraded"`) || !strings.Contains(string(r.Body), "disconnected") {
		t.Errorf("admin status while disconnected: %d %s", r.Status, r.Body)
	}
	m := string(do(t, "GET", b.admin+"/metrics", nil).Body)
	if !strings.Contains(m, "jwtgate_store_connected 0") || !strings.Contains(m, "jwtgate_store_healthy 0") ||
		strings.Contains(m, "jwtgate_store_missed_notifications_total 0") {
		t.Errorf("metrics while disconnected lack jwtgate_store_connected 0 / jwtgate_store_healthy 0 / missed notifications:\n%s", m)
	}

	// B may reconnect its listener; a change propagates by notification
	// again.
	px.refuse("")
	waitFor(t, "B reconnects", b.st.Connected)
	m = string(do(t, "GET", b.admin+"/metrics", nil).Body)
	if !strings.Contains(m, "jwtgate_store_reconnects_total 1") || !strings.Contains(m, "jwtgate_store_connected 1") {
		t.Errorf("metrics after reconnect:\n%s", m)
	}
	a.setStatus("proj", "stay", "inactive")
	b.eventually(toks["stay"], "key_inactive", propagationBound)
	b.eventually(tokNew, "ok", propagationBound)
}

// TestPartitionMaxStale: when node B cannot reach PostgreSQL at all (so it
// cannot poll the change revision either), it verifies from its caches only
// until the max-stale bound: past it, verifies answer 503 — never a verdict
// from state it cannot vouch for — and /readyz answers 503 "not ready",
// until the database is back.
func TestPartitionMaxStale(t *testing.T) {
	dsn := pgtest.Start(t)
	a := startNode(t, dsn, "a")
	px, viaProxy := newProxy(t, dsn)
	const maxStale = 2 * time.Second
	b := startNode(t, withParam(viaProxy, "jwtgate_max_stale", maxStale.String()), "b", pgstore.WithReconnectBackoff(50*time.Millisecond, 200*time.Millisecond))
	// B's listener drops every cache when it (first) connects: wait for it,
	// so that what B caches next is still cached when the partition starts.
	waitFor(t, "B listens", b.st.Connected)
	priv := enginetest.Key("rsa2048-a")
	if r := a.addKey("proj", priv, "k"); r.Status != 201 {
		t.Fatal(r.Status)
	}
	tok := tokenFor(priv, "k", "proj")
	b.eventually(tok, "ok", propagationBound)
	// Once B has been told of the registration (a verify that overtook the
	// notification leaves nothing cached), a verify caches the key.
	metrics := func() string { return string(do(t, "GET", b.admin+"/metrics", nil).Body) }
	waitFor(t, "B is notified", func() bool { return strings.Contains(metrics(), "jwtgate_store_notifications_total 1\n") })
	waitFor(t, "B caches the key", func() bool { return b.code(tok) == "ok" && strings.Contains(metrics(), "jwtgate_key_cache_size 1\n") })
	if m := metrics(); !strings.Contains(m, "jwtgate_store_max_stale_seconds 2.000") {
		t.Errorf("metrics lack jwtgate_store_max_stale_seconds 2.000")
	}

	px.setCut(true)
	cut := time.Now()
	waitFor(t, "B notices the partition", func() bool { return !b.st.Connected() })
	if c := b.code(tok); c != "ok" && time.Since(cut) < maxStale-time.Second {
		t.Errorf("right after the partition, a cached key: %s", c)
	}
	// Past the bound (plus the poll interval: the bound runs from the
	// start of the last successful poll), 503 for a cached key too.
	b.eventually(tok, "http-503", maxStale+2*time.Second)
	t.Logf("503 after %v of partition (max-stale %v)", time.Since(cut), maxStale)
	if time.Since(cut) < maxStale-time.Second {
		t.Errorf("503 after %v, well before max-stale %v", time.Since(cut), maxStale)
	}
	r := do(t, "GET", b.base+"/readyz", nil)
	if r.Status != 503 || string(r.Body) != "not ready\n" {
		t.Errorf("readyz past max-stale: %d %q", r.Status, r.Body)
	}
	if r := b.adminDo("GET", "/v1/status", nil); !strings.Contains(string(r.Body), `"state":"stale"`) || !strings.Contains(string(r.Body), "max-stale") {
		t.Errorf("admin status past max-stale: %d %s", r.Status, r.Body)
	}
	for _, tk := range []string{tok, tokenFor(priv, "unknown", "proj")} {
		if c := b.code(tk); c != "http-503" {
			t.Errorf("verify past max-stale: %s, want http-503", c)
		}
	}
	// Back: verdicts and readiness return.
	px.setCut(false)
	waitFor(t, "B reconnects", b.st.Connected)
	b.eventually(tok, "ok", propagationBound)
	waitFor(t, "B ready again", func() bool { return do(t, "GET", b.base+"/readyz", nil).Status == 200 })
}

func withParam(dsn, name, value string) string {
	u, _ := url.Parse(dsn)
	q := u.Query()
	q.Set(name, value)
	u.RawQuery = q.Encode()
	return u.String()
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting: %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// TestConcurrentRegistrationsAcrossNodes: several nodes register keys at
// once; none is lost and a kid conflict gives 409 on all but one.
func TestConcurrentRegistrationsAcrossNodes(t *testing.T) {
	dsn := pgtest.Start(t)
	nodes := []*node{startNode(t, dsn, "n0"), startNode(t, dsn, "n1"), startNode(t, dsn, "n2")}
	priv := enginetest.Key("rsa2048-a")
	const rounds = 15
	var wg sync.WaitGroup
	type result struct {
		round, node, status int
	}
	results := make(chan result, rounds*len(nodes)*2)
	for round := range rounds {
		for i, n := range nodes {
			wg.Add(2)
			go func() { // everyone wants the same kid
				defer wg.Done()
				r := n.addKey(fmt.Sprintf("p%d", i), priv, fmt.Sprintf("contested-%d", round))
				results <- result{round, i, r.Status}
			}()
			go func() { // and a kid of its own
				defer wg.Done()
				r := n.addKey("own", priv, fmt.Sprintf("own-%d-%d", i, round))
				if r.Status != 201 {
					t.Errorf("own kid on node %d: %d %s", i, r.Status, r.Body)
				}
			}()
		}
	}
	wg.Wait()
	close(results)
	created := make([]int, rounds)
	for r := range results {
		switch r.status {
		case 201:
			created[r.round]++
		case 409:
		default:
			t.Errorf("round %d node %d: status %d", r.round, r.node, r.status)
		}
	}
	for round, c := range created {
		if c != 1 {
			t.Errorf("contested kid %d: %d nodes got 201, want exactly 1", round, c)
		}
	}
	var list struct{ Keys []map[string]any }
	_ = json.Unmarshal(nodes[1].adminDo("GET", "/v1/projects/own/keys", nil).Body, &list)
	if len(list.Keys) != rounds*len(nodes) {
		t.Errorf("%d own keys listed, want %d: registrations were lost", len(list.Keys), rounds*len(nodes))
	}
	// Each contested kid is in force on every node, for its owner only.
	for round := range rounds {
		kid := fmt.Sprintf("contested-%d", round)
		k, err := nodes[0].st.Get(context.Background(), kid)
		if err != nil {
			t.Fatal(err)
		}
		tok := tokenFor(priv, kid, k.Project)
		for _, n := range nodes {
			n.eventually(tok, "ok", propagationBound)
		}
	}
}

// TestDeletionWhileLoadsRace: node B loads keys all the time (a one-entry
// key cache, two keys in use) while notifications from node A keep
// arriving; a key deleted on A must then be refused on B for good — no
// token cached during a load that a notification overtook may survive the
// deletion.
func TestDeletionWhileLoadsRace(t *testing.T) {
	dsn := pgtest.Start(t)
	a := startNode(t, dsn, "a")
	b := startNodeWith(t, dsn, "b", []engine.Option{engine.WithKeyCacheSize(1)})
	priv := enginetest.Key("rsa2048-a")
	for _, kid := range []string{"x", "y", "z"} {
		if r := a.addKey("proj", priv, kid); r.Status != 201 {
			t.Fatal(r.Status)
		}
	}
	tx, ty := tokenFor(priv, "x", "proj"), tokenFor(priv, "y", "proj")
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for i := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := 0; ; j++ {
				select {
				case <-stop:
					return
				default:
				}
				tok := tx
				if (i+j)%2 == 1 {
					tok = ty
				}
				b.verify(tok)
			}
		}()
	}
	for i := range 150 { // notifications from A while B loads
		if r := a.adminDo("PATCH", "/v1/projects/proj/keys/z", map[string]any{"label": fmt.Sprint("l", i)}); r.Status != 200 {
			t.Fatal(r.Status)
		}
	}
	close(stop)
	wg.Wait()
	if r := a.adminDo("DELETE", "/v1/projects/proj/keys/x?force=true", nil); r.Status != 204 {
		t.Fatal(r.Status)
	}
	b.eventually(tx, "unknown_kid", propagationBound)
	for range 200 {
		if c := b.code(tx); c != "unknown_kid" {
			t.Fatalf("B verified a token of a deleted key again: %s", c)
		}
	}
}

// TestReRegisteredKIDStartsFreshAcrossNodes: a kid deleted and registered
// again (another key, another project) starts with no usage, though node A
// still had the old key's verifications counted in memory, unflushed, when
// the kid was deleted — on another node (B) or on A itself.
func TestReRegisteredKIDStartsFreshAcrossNodes(t *testing.T) {
	dsn := pgtest.Start(t)
	st := open(t, dsn, pgstore.WithApplicationName("jwtgate-a"))
	srvA := servertest.Start(t, server.Config{
		Store: st, AdminToken: adminToken, Logger: slog.New(slog.DiscardHandler),
		UsageFlushInterval: time.Hour, // flushed only when the test says so
	})
	a := &node{t: t, name: "a", st: st, srv: srvA, base: "http://" + srvA.Addr(), admin: "http://" + srvA.AdminAddr()}
	b := startNode(t, dsn, "b")
	flushA := func() {
		t.Helper()
		if err := srvA.Verifier().FlushUsage(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
	fresh := func(n *node, project, when string) {
		t.Helper()
		k := n.adminDo("GET", "/v1/projects/"+project+"/keys/reused", nil).JSON(t)
		if k["verified_count"] != float64(0) || k["last_used_at"] != nil {
			t.Fatalf("%s, on %s: the re-registered kid inherited usage: %v", when, n.name, k)
		}
	}
	row := func(when string) {
		t.Helper()
		var count int64
		var last *time.Time
		if err := st.Pool().QueryRow(context.Background(), "SELECT verified_count, last_used_at FROM jwtgate_keys WHERE kid = 'reused'").Scan(&count, &last); err != nil || count != 0 || last != nil {
			t.Fatalf("%s: row in PostgreSQL: verified_count=%d last_used_at=%v err=%v", when, count, last, err)
		}
	}
	verifyOnA := func(tok string, times int) {
		t.Helper()
		for range times {
			if c := a.code(tok); c != "ok" {
				t.Fatalf("verify on A: %s", c)
			}
		}
	}
	k1, k2, k3 := enginetest.Key("rsa2048-a"), enginetest.Key("rsa2048-b"), enginetest.Key("rsa2048-c")

	// Deleted and registered again on B while A has usage counted.
	if r := b.addKey("first", k1, "reused"); r.Status != 201 {
		t.Fatalf("add: %d %s", r.Status, r.Body)
	}
	tok1 := tokenFor(k1, "reused", "first")
	a.eventually(tok1, "ok", propagationBound)
	verifyOnA(tok1, 4)
	if r := b.adminDo("DELETE", "/v1/projects/first/keys/reused?force=true", nil); r.Status != 204 {
		t.Fatalf("delete on B: %d %s", r.Status, r.Body)
	}
	if r := b.addKey("second", k2, "reused"); r.Status != 201 {
		t.Fatalf("re-register on B: %d %s", r.Status, r.Body)
	}
	// A has seen the change once the old token names a foreign project
	// (a refusal counts no usage).
	a.eventually(tok1, "audience_mismatch", propagationBound)
	fresh(a, "second", "deleted on B, before A's flush")
	flushA()
	fresh(a, "second", "deleted on B, after A's flush")
	fresh(b, "second", "deleted on B, after A's flush")
	row("deleted on B")
	tok2 := tokenFor(k2, "reused", "second")
	verifyOnA(tok2, 1)
	flushA()
	if k := b.adminDo("GET", "/v1/projects/second/keys/reused", nil).JSON(t); k["verified_count"] != float64(1) || k["last_used_at"] == nil {
		t.Fatalf("the new key's own usage: %v", k)
	}

	// Deleted and registered again on A itself, with usage unflushed.
	verifyOnA(tok2, 3)
	if r := a.adminDo("DELETE", "/v1/projects/second/keys/reused?force=true", nil); r.Status != 204 {
		t.Fatalf("delete on A: %d %s", r.Status, r.Body)
	}
	if r := a.addKey("third", k3, "reused"); r.Status != 201 {
		t.Fatalf("re-register on A: %d %s", r.Status, r.Body)
	}
	fresh(a, "third", "deleted on A, before A's flush")
	flushA()
	fresh(a, "third", "deleted on A, after A's flush")
	fresh(b, "third", "deleted on A, after A's flush")
	row("deleted on A")
}
