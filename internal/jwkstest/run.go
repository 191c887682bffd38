package jwkstest

import (
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jwtgate/jwtgate/engine"
	"github.com/jwtgate/jwtgate/engine/enginetest"
	"github.com/jwtgate/jwtgate/internal/lifecycletest"
)

// Run runs the JWKS import tests against servers on the stores open
// returns (a new, empty store per subtest; open arranges its cleanup).
func Run(t *testing.T, open func(t *testing.T) engine.KeyStore) {
	for _, c := range []struct {
		name string
		fn   func(*testing.T, engine.KeyStore)
	}{
		{"ImportRotateRetire", testImportRotateRetire},
		{"ETagAndMaxAge", testETagAndMaxAge},
		{"Failures", testFailures},
		{"SSRF", testSSRF},
		{"KIDTakenElsewhere", testKIDTaken},
		{"UnknownKIDRefreshBounded", testUnknownKID},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel() // each has its own store and servers; most of the time is waiting
			c.fn(t, open(t))
		})
	}
}

// TwoNodes runs two servers on stores sharing one database (a and b):
// a source set on node A is imported once, node B verifies the imported
// key through the store's change feed, and the nodes never fetch at the
// same time nor both per refresh.
func TwoNodes(t *testing.T, sa, sb engine.KeyStore) {
	a, b := enginetest.Key("rsa2048-a"), enginetest.Key("rsa2048-b")
	j := NewJWKS(t, RSAJWK(a, "ka"))
	na, nb := Start(t, sa, j, true), Start(t, sb, j, true)
	lifecycletest.Want(t, "PUT on A", PutSource(na, "proj", j.URL(), "1s", "1h"), 201, "")
	Eventually(t, 3*time.Second, "node B verifies the key imported on A", func() bool { return verify(nb, a, "ka", "proj") == 200 })
	m := Source(nb, "proj")
	if !slices.Equal(kids(m), []string{"ka"}) || m["last_fetch_at"] == nil {
		t.Fatalf("the source seen from B: %v", m)
	}
	j.Delay(300 * time.Millisecond)
	j.Set(RSAJWK(a, "ka"), RSAJWK(b, "kb"))
	before := j.Requests.Load()
	Eventually(t, 5*time.Second, "both nodes verify kb after a refresh", func() bool {
		return verify(na, b, "kb", "proj") == 200 && verify(nb, b, "kb", "proj") == 200
	})
	time.Sleep(3 * time.Second)
	if got := j.MaxInFlight.Load(); got != 1 {
		t.Fatalf("the JWKS server saw %d fetches at once, want 1 (one node fetches at a time)", got)
	}
	// Refresh 1s, answers take 0.3s: about one fetch per 1.3s for the
	// pair, twice that if each node fetched on its own.
	if got := j.Requests.Load() - before; got > 6 {
		t.Fatalf("%d fetches in about 4s with a 1s refresh, want at most 6 (one schedule for both nodes)", got)
	}
	evs, _ := na.Audit("action=key.imported&kid=kb")
	if len(evs) != 1 {
		t.Fatalf("kb imported %d times, want once: %v", len(evs), evs)
	}

	// Unknown kids on both nodes at once: one fetch for the pair.
	c := enginetest.Key("rsa2048-c")
	j2 := NewJWKS(t, RSAJWK(a, "k2a"))
	lifecycletest.Want(t, "PUT proj2 on A", PutSource(na, "proj2", j2.URL(), "1h", "1h"), 201, "")
	j2.Set(RSAJWK(a, "k2a"), RSAJWK(c, "k2c"))
	time.Sleep(UnknownKIDInterval + 300*time.Millisecond)
	var wg sync.WaitGroup
	for _, n := range []*Node{na, nb, na, nb} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 25 {
				verify(n, c, "k2c", "proj2")
			}
		}()
	}
	wg.Wait()
	Eventually(t, 3*time.Second, "both nodes verify k2c after an unknown-kid refresh", func() bool {
		return verify(na, c, "k2c", "proj2") == 200 && verify(nb, c, "k2c", "proj2") == 200
	})
	if got := j2.Requests.Load(); got != 2 {
		t.Fatalf("fetches of proj2's JWKS after unknown kids on both nodes = %d, want 2 (the PUT's and one refresh)", got)
	}
}

func testImportRotateRetire(t *testing.T, st engine.KeyStore) {
	a, b := enginetest.Key("rsa2048-a"), enginetest.Key("rsa2048-b")
	j := NewJWKS(t, RSAJWK(a, "ka"), ECJWK(t, "kec"), RSAJWK(enginetest.Key("rsa1024"), "ksmall"))
	n := Start(t, st, j, true)
	r := PutSource(n, "proj", j.URL(), "1s", "1s")
	m := lifecycletest.Want(t, "PUT jwks-source", r, 201, "")
	if got := kids(m); !slices.Equal(got, []string{"ka"}) {
		t.Fatalf("imported_kids = %v, want [ka] (EC and 1024-bit keys refused); body %s", got, r.Body)
	}
	ke := m["key_errors"].(map[string]any)
	if msg, _ := ke["kec"].(string); !strings.Contains(msg, "only RSA") {
		t.Fatalf("key_errors[kec] = %q, want the EC key refused; body %s", msg, r.Body)
	}
	if msg, _ := ke["ksmall"].(string); !strings.Contains(msg, "2048") {
		t.Fatalf("key_errors[ksmall] = %q, want the 1024-bit key refused by the key policy; body %s", msg, r.Body)
	}
	if m["last_fetch_at"] == nil || m["last_error"] != nil {
		t.Fatalf("after a good fetch: last_fetch_at %v, last_error %v", m["last_fetch_at"], m["last_error"])
	}
	if s := verify(n, a, "ka", "proj"); s != 200 {
		t.Fatalf("a token of the imported key: %d, want 200", s)
	}
	key := lifecycletest.Want(t, "GET imported key", n.Root("GET", "/v1/projects/proj/keys/ka", nil), 200, "")
	if key["label"] != "jwks-import" || key["status"] != "active" {
		t.Fatalf("imported key = %v, want label jwks-import, active", key)
	}
	evs, _ := n.Audit("action=key.imported&project=proj")
	if len(evs) != 1 || evs[0]["kid"] != "ka" || !byImport(evs[0]) {
		t.Fatalf("audit of the import = %v, want one key.imported of ka by system/jwks-import", evs)
	}

	// Rotation: kb published, ka withdrawn. kb is imported at the next
	// refresh; ka is deactivated after the grace, then deleted.
	j.Set(RSAJWK(b, "kb"))
	Eventually(t, 5*time.Second, "kb imported after the rotation", func() bool {
		return slices.Contains(kids(Source(n, "proj")), "kb")
	})
	if s := verify(n, b, "kb", "proj"); s != 200 {
		t.Fatalf("a token of the rotated-in key: %d, want 200", s)
	}
	if s := verify(n, a, "ka", "proj"); s != 200 {
		t.Fatalf("the withdrawn key within its grace period: %d, want 200 (still active)", s)
	}
	Eventually(t, 6*time.Second, "ka deactivated after the grace period", func() bool {
		return n.Root("GET", "/v1/projects/proj/keys/ka", nil).JSON(t)["status"] == "inactive"
	})
	// The store has the change before the importer's Verifier.UpdateKey
	// returns (and invalidates the caches): allow that instant.
	Eventually(t, time.Second, "the deactivated key refused", func() bool { return verify(n, a, "ka", "proj") == 401 })
	Eventually(t, 6*time.Second, "ka deleted after a second grace period", func() bool {
		return n.Root("GET", "/v1/projects/proj/keys/ka", nil).Status == 404
	})
	for _, action := range []string{"key.updated", "key.deleted"} {
		evs, _ := n.Audit("action=" + action + "&kid=ka")
		if len(evs) != 1 || !byImport(evs[0]) {
			t.Fatalf("audit %s of ka = %v, want one by jwks-import", action, evs)
		}
	}
	if s := verify(n, b, "kb", "proj"); s != 200 {
		t.Fatalf("kb after ka's retirement: %d, want 200", s)
	}
	// Removing the source leaves its keys.
	lifecycletest.Want(t, "DELETE jwks-source", n.Root("DELETE", sourcePath("proj"), nil), 204, "")
	for _, action := range []string{"jwks_source.set", "jwks_source.deleted"} {
		evs, _ := n.Audit("action=" + action + "&project=proj")
		if len(evs) != 1 {
			t.Fatalf("audit %s = %v, want one event", action, evs)
		}
		if a, _ := evs[0]["actor"].(map[string]any); a["type"] != "root" {
			t.Fatalf("audit %s = %v, want one by the root token", action, evs)
		}
		snap, _ := evs[0]["before"].(map[string]any)
		if action == "jwks_source.set" {
			snap, _ = evs[0]["after"].(map[string]any)
		}
		if snap["url"] != j.URL() || snap["grace"] != "1s" {
			t.Fatalf("audit %s records %v, want the source's url and grace", action, evs[0])
		}
	}
	lifecycletest.Want(t, "GET removed source", n.Root("GET", sourcePath("proj"), nil), 404, "not_found")
	if s := verify(n, b, "kb", "proj"); s != 200 {
		t.Fatalf("kb after the source was removed: %d, want 200", s)
	}
}

func testETagAndMaxAge(t *testing.T, st engine.KeyStore) {
	a := enginetest.Key("rsa2048-a")
	j := NewJWKS(t, RSAJWK(a, "ka"))
	n := Start(t, st, j, true)
	lifecycletest.Want(t, "PUT", PutSource(n, "proj", j.URL(), "1s", "1h"), 201, "")
	Eventually(t, 5*time.Second, "a refresh answered 304 Not Modified (If-None-Match sent)", func() bool { return j.NotMod.Load() > 0 })
	m := Source(n, "proj")
	if m["last_error"] != nil || !slices.Equal(kids(m), []string{"ka"}) {
		t.Fatalf("after a 304: %v, want no error and ka still imported", m)
	}

	// max-age above the refresh interval spaces the fetches out
	// (httptest's TLS servers share one certificate: n trusts j2 too).
	j2 := NewJWKS(t, RSAJWK(enginetest.Key("rsa2048-b"), "kb"))
	j2.MaxAge(3600)
	lifecycletest.Want(t, "PUT max-age source", PutSource(n, "proj2", j2.URL(), "1s", "1h"), 201, "")
	time.Sleep(2500 * time.Millisecond)
	if got := j2.Requests.Load(); got != 1 {
		t.Fatalf("a JWKS with Cache-Control max-age=3600 and refresh 1s was fetched %d times in 2.5s, want 1", got)
	}
	if nf := Source(n, "proj2")["next_fetch_at"].(string); !strings.HasPrefix(nf, time.Now().UTC().Add(time.Hour).Format("2006-01-02T15")) &&
		!strings.HasPrefix(nf, time.Now().UTC().Add(time.Hour-time.Minute).Format("2006-01-02T15")) {
		t.Fatalf("next_fetch_at = %s, want about an hour from now (max-age)", nf)
	}
}

func testFailures(t *testing.T, st engine.KeyStore) {
	a := enginetest.Key("rsa2048-a")
	j := NewJWKS(t, RSAJWK(a, "ka"))
	n := Start(t, st, j, true)
	lifecycletest.Want(t, "PUT", PutSource(n, "proj", j.URL(), "1h", "0s"), 201, "")
	for _, c := range []struct{ mode, want string }{
		{ModeFail, "HTTP 500"},
		{ModeGarbage, "not a JSON object"},
		{ModeHuge, "larger than 64 KiB"},
		{ModeRedirect, "redirect"},
		{ModeSlow, "longer than 5s"},
	} {
		j.Mode(c.mode)
		start := time.Now()
		m := lifecycletest.Want(t, "PUT ("+c.mode+")", PutSource(n, "proj", j.URL(), "1h", "0s"), 200, "")
		if e, _ := m["last_error"].(string); !strings.Contains(e, c.want) {
			t.Fatalf("%s: last_error = %q, want it to say %q", c.mode, e, c.want)
		}
		if c.mode == ModeSlow && time.Since(start) > 7*time.Second {
			t.Fatalf("a slow JWKS server held the fetch for %v, beyond the 5 s limit", time.Since(start))
		}
		// A failed fetch changes no key, even with grace 0.
		if !slices.Equal(kids(m), []string{"ka"}) {
			t.Fatalf("%s: imported_kids = %v, want ka kept", c.mode, kids(m))
		}
		if s := verify(n, a, "ka", "proj"); s != 200 {
			t.Fatalf("%s: the imported key after a failed fetch: %d, want 200", c.mode, s)
		}
	}
	j.Mode(ModeKeys)
	m := lifecycletest.Want(t, "PUT (recovered)", PutSource(n, "proj", j.URL(), "1h", "0s"), 200, "")
	if m["last_error"] != nil {
		t.Fatalf("after recovery last_error = %v, want null", m["last_error"])
	}
}

func testSSRF(t *testing.T, st engine.KeyStore) {
	j := NewJWKS(t, RSAJWK(enginetest.Key("rsa2048-a"), "ka"))
	n := Start(t, st, j, false) // no --jwks-allow-private
	lifecycletest.Want(t, "PUT http://", PutSource(n, "proj", strings.Replace(j.URL(), "https://", "http://", 1), "1h", "1h"), 400, "invalid_url")
	r := PutSource(n, "proj", j.URL(), "1h", "1h") // https://127.0.0.1:port
	lifecycletest.Want(t, "PUT https://127.0.0.1", r, 400, "invalid_url")
	if !strings.Contains(string(r.Body), "--jwks-allow-private") {
		t.Fatalf("the refusal does not name the flag: %s", r.Body)
	}
	// A name that resolves to loopback passes the URL check and is refused
	// at dial time, on the resolved address.
	byName := strings.Replace(j.URL(), "127.0.0.1", "localhost", 1)
	m := lifecycletest.Want(t, "PUT https://localhost", PutSource(n, "proj", byName, "1h", "1h"), 201, "")
	if e, _ := m["last_error"].(string); !strings.Contains(e, "not a public address") {
		t.Fatalf("last_error = %q, want the loopback address refused at dial time", e)
	} else if strings.Contains(e, "127.0.0.1") || strings.Contains(e, "::1") {
		t.Fatalf("last_error = %q names the address the host resolved to", e)
	}
	if got := j.Requests.Load(); got != 0 {
		t.Fatalf("the JWKS server got %d requests, want 0", got)
	}
	if len(kids(m)) != 0 {
		t.Fatalf("imported %v through a refused address", kids(m))
	}
	lifecycletest.Want(t, "PUT bad refresh", n.Root("PUT", sourcePath("proj"), map[string]any{"url": byName, "refresh": "10ms"}), 400, "invalid_request")
}

func testKIDTaken(t *testing.T, st engine.KeyStore) {
	a, b := enginetest.Key("rsa2048-a"), enginetest.Key("rsa2048-b")
	c := enginetest.Key("rsa2048-c")
	j := NewJWKS(t, RSAJWK(a, "shared"), RSAJWK(b, "own"), RSAJWK(a, "byhand"))
	n := Start(t, st, j, true)
	lifecycletest.Want(t, "POST other's key", n.AddKey(lifecycletest.RootToken, "other", c, "shared"), 201, "")
	lifecycletest.Want(t, "POST a key by hand", n.AddKey(lifecycletest.RootToken, "proj", c, "byhand"), 201, "")
	m := lifecycletest.Want(t, "PUT", PutSource(n, "proj", j.URL(), "1h", "1h"), 201, "")
	if !slices.Equal(kids(m), []string{"own"}) {
		t.Fatalf("imported_kids = %v, want [own]", kids(m))
	}
	if e, _ := m["key_errors"].(map[string]any)["shared"].(string); !strings.Contains(e, "another project") {
		t.Fatalf("key_errors[shared] = %q, want kid taken by another project", e)
	}
	k := lifecycletest.Want(t, "GET other's key", n.Root("GET", "/v1/projects/other/keys/shared", nil), 200, "")
	if k["label"] != "key shared" {
		t.Fatalf("the other project's key changed: %v", k)
	}
	if s := verify(n, a, "shared", "proj"); s != 401 {
		t.Fatalf("a token of the JWKS's key under the taken kid: %d, want 401", s)
	}
	if e, _ := m["key_errors"].(map[string]any)["byhand"].(string); !strings.Contains(e, "by other means") {
		t.Fatalf("key_errors[byhand] = %q, want the hand-registered key left alone", e)
	}
	if k := n.Root("GET", "/v1/projects/proj/keys/byhand", nil).JSON(t); k["label"] != "key byhand" {
		t.Fatalf("the hand-registered key changed: %v", k)
	}
	if s := verify(n, c, "byhand", "proj"); s != 200 {
		t.Fatalf("the hand-registered key: %d, want 200", s)
	}

	// The JWKS now names another key with kid "own": it replaces the old.
	j.Set(RSAJWK(c, "own"))
	lifecycletest.Want(t, "PUT again", PutSource(n, "proj", j.URL(), "1h", "1h"), 200, "")
	Eventually(t, time.Second, "the new key of kid own verifies, the old one no longer", func() bool {
		return verify(n, c, "own", "proj") == 200 && verify(n, b, "own", "proj") == 401
	})
	if evs, _ := n.Audit("action=key.deleted&kid=own"); len(evs) != 1 || !byImport(evs[0]) {
		t.Fatalf("audit of the replaced key = %v, want one key.deleted by jwks-import", evs)
	}
}

func testUnknownKID(t *testing.T, st engine.KeyStore) {
	a, b := enginetest.Key("rsa2048-a"), enginetest.Key("rsa2048-b")
	j := NewJWKS(t, RSAJWK(a, "ka"))
	n := Start(t, st, j, true)
	lifecycletest.Want(t, "PUT", PutSource(n, "proj", j.URL(), "1h", "1h"), 201, "")
	if got := j.Requests.Load(); got != 1 {
		t.Fatalf("fetches after PUT = %d, want 1", got)
	}
	j.Set(RSAJWK(a, "ka"), RSAJWK(b, "kb"))
	flood := func(project string) {
		var wg sync.WaitGroup
		for range 8 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for range 25 {
					verify(n, b, "kb", project)
				}
			}()
		}
		wg.Wait()
	}
	// Unknown kids for projects without a source fetch nothing.
	flood("nosource")
	time.Sleep(UnknownKIDInterval + 200*time.Millisecond)
	if got := j.Requests.Load(); got != 1 {
		t.Fatalf("unknown kids of a project without a source made fetches: %d, want 1", got)
	}
	// A flood of an unknown kid for the project: one fetch, and the kid
	// becomes known.
	flood("proj")
	Eventually(t, 3*time.Second, "kb imported after an unknown-kid refresh", func() bool { return verify(n, b, "kb", "proj") == 200 })
	if got := j.Requests.Load(); got != 2 {
		t.Fatalf("fetches after a flood of 200 unknown-kid requests = %d, want 2 (one refresh)", got)
	}
	// Another flood within the interval: no fetch.
	j.Set(RSAJWK(a, "ka"), RSAJWK(b, "kb"), RSAJWK(enginetest.Key("rsa2048-c"), "kc"))
	start := time.Now()
	for time.Since(start) < UnknownKIDInterval/2 {
		verify(n, enginetest.Key("rsa2048-c"), "kc", "proj")
	}
	if got := j.Requests.Load(); got != 2 {
		t.Fatalf("unknown-kid requests within %v of the last fetch made %d fetches, want none beyond 2", UnknownKIDInterval, got)
	}
}

// byImport reports whether an audit event's actor is the import.
func byImport(e map[string]any) bool {
	a, _ := e["actor"].(map[string]any)
	return a["type"] == "system" && a["id"] == "jwks-import"
}
