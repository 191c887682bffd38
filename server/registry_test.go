package server

import (
	"context"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jwtgate/jwtgate/engine"
	"github.com/jwtgate/jwtgate/store/boltstore"
	"github.com/jwtgate/jwtgate/store/storetest"
)

// TestUnknownKIDAndProjectFloodSparesStore (issue 9 item 8): over HTTP, a
// flood of distinct unknown kids on /v1/verify and of unknown projects on
// the public JWKS endpoint reaches the key store at most a few times, a
// known project's JWKS is read once until a key changes, and /metrics
// reports the registry index and the key cache's memory with fixed series.
func TestUnknownKIDAndProjectFloodSparesStore(t *testing.T) {
	bolt, err := boltstore.Open(filepath.Join(t.TempDir(), "keys.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { bolt.Close() })
	keys := make([]*engine.Key, 500)
	now := time.Now().UTC().Truncate(time.Microsecond)
	for i := range keys {
		keys[i] = storetest.NewKey("k-"+strconv.Itoa(i), "proj-"+strconv.Itoa(i%10), now)
	}
	if err := bolt.ImportKeys(context.Background(), keys); err != nil {
		t.Fatal(err)
	}
	cs := &storetest.Counting{KeyStore: bolt}
	ts := startServer(t, Config{Store: cs})
	select {
	case <-ts.srv.v.Ready():
	case <-time.After(10 * time.Second):
		t.Fatal("registry not loaded within 10 s")
	}
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		logs := ts.logs.String()
		if strings.Contains(logs, `msg="key registry loaded" kids=500`) && strings.Contains(logs, `msg="key cache bounded" max_bytes=`) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("start-up log lacks the registry and key cache lines:\n%s", logs)
		}
	}
	metrics := func() string {
		return string(do(t, "GET", ts.admin+"/metrics", nil, "Authorization", "Bearer "+testAdminToken).Body)
	}
	metrics()
	before := metrics()

	reads := cs.Reads()
	for i := range 2000 {
		r := ts.verify(string(storetest.UnknownKIDToken("flood-"+strconv.Itoa(i), "proj-1", time.Now())))
		mustCode(t, r, "unknown_kid")
		if r := do(t, "GET", ts.base+"/v1/projects/nope-"+strconv.Itoa(i)+"/jwks.json", nil); r.Status != 404 {
			t.Fatalf("JWKS of an unknown project: %d %s", r.Status, r.Body)
		}
	}
	if got := cs.Reads() - reads; got > 10 {
		t.Fatalf("2,000 unknown kids and 2,000 unknown projects made %d store reads, want at most 10", got)
	}
	if after := metrics(); strings.Count(after, "\n") != strings.Count(before, "\n") {
		t.Errorf("/metrics grew under the flood:\nbefore:\n%s\nafter:\n%s", before, after)
	}
	lists := cs.Lists.Load()
	for range 200 {
		if r := do(t, "GET", ts.base+"/v1/projects/proj-3/jwks.json", nil); r.Status != 200 || strings.Count(string(r.Body), `"kid"`) != 50 {
			t.Fatalf("JWKS of proj-3: %d %s", r.Status, r.Body)
		}
	}
	if got := cs.Lists.Load() - lists; got != 1 {
		t.Fatalf("200 JWKS requests of one project made %d store lists, want 1", got)
	}
	if r := ts.adminDo("DELETE", "/v1/projects/proj-3/keys/k-3", nil); r.Status != 204 {
		t.Fatalf("delete: %d %s", r.Status, r.Body)
	}
	if r := do(t, "GET", ts.base+"/v1/projects/proj-3/jwks.json", nil); r.Status != 200 || strings.Count(string(r.Body), `"kid"`) != 49 {
		t.Fatalf("JWKS of proj-3 after a deletion: %d %s", r.Status, r.Body)
	}

	m := string(do(t, "GET", ts.admin+"/metrics", nil, "Authorization", "Bearer "+testAdminToken).Body)
	for _, want := range []string{"jwtgate_registry_kids 499\n", "jwtgate_registry_index_ready 1\n", "jwtgate_key_cache_max_bytes ", "jwtgate_key_cache_bytes ", "jwtgate_key_store_reads_total "} {
		if !strings.Contains(m, want) {
			t.Errorf("/metrics lacks %q", want)
		}
	}
}
