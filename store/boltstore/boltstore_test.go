package boltstore

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jwtgate/jwtgate/engine"
	"github.com/jwtgate/jwtgate/store/storetest"
	bolt "go.etcd.io/bbolt"
)

var (
	ctx  = context.Background()
	base = time.Date(2025, 1, 2, 3, 4, 5, 678901000, time.UTC)
)

func openT(t testing.TB, path string, opts ...Option) *Store {
	t.Helper()
	s, err := Open(path, opts...)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func TestOpenCreatesPrivateFileAndDir(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data", "sub")
	path := filepath.Join(dir, "keys.db")
	s := openT(t, path)
	if s.Path() != path {
		t.Fatalf("Path = %q", s.Path())
	}
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if m := fi.Mode().Perm(); m != 0o600 {
		t.Fatalf("file mode %o, want 600", m)
	}
	di, err := os.Stat(dir)
	if err != nil {
		t.Fatal(err)
	}
	if m := di.Mode().Perm(); m != 0o700 {
		t.Fatalf("dir mode %o, want 700", m)
	}
	if ok, detail := s.Health(); !ok {
		t.Fatalf("Health = false, %q", detail)
	}
}

func TestOpenBadArgs(t *testing.T) {
	if _, err := Open(""); err == nil {
		t.Fatal("Open(\"\") succeeded")
	}
	if _, err := Open(filepath.Join(t.TempDir(), "k.db"), WithLockTimeout(0)); err == nil {
		t.Fatal("Open with lock timeout 0 succeeded")
	}
	// Not a bbolt file.
	path := filepath.Join(t.TempDir(), "junk.db")
	if err := os.WriteFile(path, []byte(strings.Repeat("not a database ", 1000)), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err := Open(path)
	if err == nil || !strings.Contains(err.Error(), "not a valid jwtgate key store file") {
		t.Fatalf("Open(junk) = %v, want 'not a valid jwtgate key store file'", err)
	}
}

func TestPersistsAcrossReopen(t *testing.T) {
	path := filepath.Join(t.TempDir(), "keys.db")
	s, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	k1 := storetest.NewKey("k1", "proj", base)
	k2 := storetest.NewKey("k2", "proj", base.Add(-time.Second))
	k3 := storetest.NewKey("k3", "other", base)
	for _, k := range []*engine.Key{k1, k2, k3} {
		if err := s.Create(ctx, k); err != nil {
			t.Fatal(err)
		}
	}
	label := "renamed"
	if _, err := s.Update(ctx, "proj", "k1", engine.KeyUpdate{Label: &label}, base.Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	if err := s.RecordUsage(ctx, []engine.Usage{{KID: "k1", Count: 42, LastUsed: base.Add(2 * time.Hour)}}); err != nil {
		t.Fatal(err)
	}
	if err := s.Delete(ctx, "other", "k3"); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	s = openT(t, path)
	k1.Label, k1.UpdatedAt, k1.VerifiedCount, k1.LastUsedAt = label, base.Add(time.Hour), 42, base.Add(2*time.Hour)
	got, err := s.Get(ctx, "k1")
	if err != nil {
		t.Fatal(err)
	}
	storetest.EqualKey(t, got, k1)
	if got.CreatedAt.Location() != time.UTC {
		t.Fatalf("CreatedAt location %v, want UTC", got.CreatedAt.Location())
	}
	l, err := s.List(ctx, "proj")
	if err != nil || len(l) != 2 {
		t.Fatalf("List = %d, %v", len(l), err)
	}
	storetest.EqualKey(t, l[0], k2)
	storetest.EqualKey(t, l[1], k1)
	if _, err := s.Get(ctx, "k3"); !errors.Is(err, engine.ErrKeyNotFound) {
		t.Fatalf("deleted key after reopen: %v", err)
	}
	if l, err := s.List(ctx, "other"); err != nil || len(l) != 0 {
		t.Fatalf("List(other) = %d, %v", len(l), err)
	}
}

func TestNanosecondTimesRoundTrip(t *testing.T) {
	s := openT(t, filepath.Join(t.TempDir(), "keys.db"))
	at := time.Date(2030, 6, 7, 8, 9, 10, 123456789, time.FixedZone("X", 3600))
	k := storetest.NewKey("k", "p", at)
	if err := s.Create(ctx, k); err != nil {
		t.Fatal(err)
	}
	got, err := s.Get(ctx, "k")
	if err != nil {
		t.Fatal(err)
	}
	storetest.EqualKey(t, got, k)
	if got.CreatedAt.Nanosecond() != 123456789 {
		t.Fatalf("nanoseconds lost: %v", got.CreatedAt)
	}
	// The raw record is versioned JSON with RFC 3339 UTC times.
	var raw string
	s.db.View(func(tx *bolt.Tx) error { raw = string(tx.Bucket(bucketKeys).Get([]byte("k"))); return nil })
	for _, want := range []string{`"v":1`, `"created_at":"2030-06-07T07:09:10.123456789Z"`, `"public_key":"MIIBIjAN`} {
		if !strings.Contains(raw, want) {
			t.Fatalf("record %s lacks %s", raw, want)
		}
	}
	if strings.Contains(raw, "last_used_at") {
		t.Fatalf("record of an unused key has last_used_at: %s", raw)
	}
}

func TestCreateRejectsIncompleteKeys(t *testing.T) {
	s := openT(t, filepath.Join(t.TempDir(), "keys.db"))
	good := storetest.NewKey("k", "p", base)
	for name, k := range map[string]*engine.Key{
		"nil":        nil,
		"no kid":     {Project: "p", Public: good.Public},
		"long kid":   {KID: strings.Repeat("a", 129), Project: "p", Public: good.Public},
		"no project": {KID: "k", Public: good.Public},
		"no public":  {KID: "k", Project: "p"},
		"bad time":   {KID: "k", Project: "p", Public: good.Public, CreatedAt: time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC)},
	} {
		if err := s.Create(ctx, k); err == nil {
			t.Errorf("Create(%s) succeeded", name)
		}
	}
	if l, err := s.List(ctx, "p"); err != nil || len(l) != 0 {
		t.Fatalf("List after rejected creates = %d, %v", len(l), err)
	}
}

func TestClosed(t *testing.T) {
	s, err := Open(filepath.Join(t.TempDir(), "keys.db"))
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Create(ctx, storetest.NewKey("k", "p", base)); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	if ok, _ := s.Health(); ok {
		t.Fatal("Health ok after Close")
	}
	label := "x"
	checks := map[string]error{}
	_, checks["Get"] = s.Get(ctx, "k")
	checks["Create"] = s.Create(ctx, storetest.NewKey("k2", "p", base))
	_, checks["Update"] = s.Update(ctx, "p", "k", engine.KeyUpdate{Label: &label}, base)
	checks["Delete"] = s.Delete(ctx, "p", "k")
	_, checks["List"] = s.List(ctx, "p")
	checks["RecordUsage"] = s.RecordUsage(ctx, []engine.Usage{{KID: "k", Count: 1}})
	for name, err := range checks {
		if !errors.Is(err, engine.ErrStoreClosed) {
			t.Errorf("%s after Close = %v, want ErrStoreClosed", name, err)
		}
	}
}

func TestCancelledContextWritesNothing(t *testing.T) {
	s := openT(t, filepath.Join(t.TempDir(), "keys.db"))
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if err := s.Create(cctx, storetest.NewKey("k", "p", base)); !errors.Is(err, context.Canceled) {
		t.Fatalf("Create(cancelled) = %v", err)
	}
	if _, err := s.Get(ctx, "k"); !errors.Is(err, engine.ErrKeyNotFound) {
		t.Fatalf("cancelled Create stored the key: %v", err)
	}
}

func TestSecondOpenFailsFast(t *testing.T) {
	path := filepath.Join(t.TempDir(), "keys.db")
	openT(t, path)
	start := time.Now()
	s2, err := Open(path, WithLockTimeout(100*time.Millisecond))
	if err == nil {
		s2.Close()
		t.Fatal("second Open of a file in use succeeded")
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Fatalf("second Open took %v", d)
	}
	if !errors.Is(err, ErrInUse) || !strings.Contains(err.Error(), "key store is in use by another process") {
		t.Fatalf("second Open = %v, want 'key store is in use by another process'", err)
	}
}

func TestSchemaVersion(t *testing.T) {
	path := filepath.Join(t.TempDir(), "keys.db")
	s, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	var v string
	s.db.View(func(tx *bolt.Tx) error { v = string(tx.Bucket(bucketMeta).Get(keySchema)); return nil })
	if v != "1" {
		t.Fatalf("schema version %q, want 1", v)
	}
	if err := s.db.Update(func(tx *bolt.Tx) error { return tx.Bucket(bucketMeta).Put(keySchema, []byte("2")) }); err != nil {
		t.Fatal(err)
	}
	s.Close()
	_, err = Open(path)
	if err == nil || !strings.Contains(err.Error(), "schema version 2 is newer than this jwtgate supports (1)") {
		t.Fatalf("Open(newer schema) = %v", err)
	}
	// The refused file was not changed.
	db, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: time.Second, ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	db.View(func(tx *bolt.Tx) error { v = string(tx.Bucket(bucketMeta).Get(keySchema)); return nil })
	db.Close()
	if v != "2" {
		t.Fatalf("schema version rewritten to %q", v)
	}
}

func TestCorruptRecords(t *testing.T) {
	s := openT(t, filepath.Join(t.TempDir(), "keys.db"))
	for i, kid := range []string{"bad-json", "bad-version", "bad-der", "bad-time", "bad-used"} {
		if err := s.Create(ctx, storetest.NewKey(kid, "p", base.Add(time.Duration(i)*time.Second))); err != nil {
			t.Fatal(err)
		}
	}
	good := func(mod func(r *record)) []byte {
		r, err := recordOf(storetest.NewKey("x", "p", base))
		if err != nil {
			t.Fatal(err)
		}
		mod(r)
		b, err := json.Marshal(r)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	vals := map[string][]byte{
		"bad-json":    []byte(`{"v":1,"project":`),
		"bad-version": good(func(r *record) { r.V = 2 }),
		"bad-der":     good(func(r *record) { r.Public = []byte("not der") }),
		"bad-time":    good(func(r *record) { r.CreatedAt = "yesterday" }),
		"bad-used":    good(func(r *record) { r.LastUsedAt = "soon" }),
	}
	err := s.db.Update(func(tx *bolt.Tx) error {
		for kid, v := range vals {
			if err := tx.Bucket(bucketKeys).Put([]byte(kid), v); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	label := "l"
	for kid := range vals {
		if _, err := s.Get(ctx, kid); !errors.Is(err, ErrCorrupt) {
			t.Errorf("Get(%s) = %v, want ErrCorrupt", kid, err)
		}
		if _, err := s.Update(ctx, "p", kid, engine.KeyUpdate{Label: &label}, base); !errors.Is(err, ErrCorrupt) {
			t.Errorf("Update(%s) = %v, want ErrCorrupt", kid, err)
		}
	}
	if _, err := s.List(ctx, "p"); !errors.Is(err, ErrCorrupt) {
		t.Errorf("List = %v, want ErrCorrupt", err)
	}
	if err := s.RecordUsage(ctx, []engine.Usage{{KID: "bad-used", Count: 1, LastUsed: base}}); !errors.Is(err, ErrCorrupt) {
		t.Errorf("RecordUsage(bad-used) = %v, want ErrCorrupt", err)
	}
	// Delete needs the project and creation time; with those readable a
	// damaged key can be removed.
	for kid, deletable := range map[string]bool{"bad-json": false, "bad-version": false, "bad-time": false, "bad-der": true, "bad-used": true} {
		err := s.Delete(ctx, "p", kid)
		if deletable && err != nil {
			t.Errorf("Delete(%s) = %v, want success", kid, err)
		}
		if !deletable && !errors.Is(err, ErrCorrupt) {
			t.Errorf("Delete(%s) = %v, want ErrCorrupt", kid, err)
		}
	}
	// A dangling index entry is reported, not skipped silently.
	s2 := openT(t, filepath.Join(t.TempDir(), "keys.db"))
	if err := s2.Create(ctx, storetest.NewKey("k", "p", base)); err != nil {
		t.Fatal(err)
	}
	s2.db.Update(func(tx *bolt.Tx) error { return tx.Bucket(bucketKeys).Delete([]byte("k")) })
	if _, err := s2.List(ctx, "p"); !errors.Is(err, ErrCorrupt) {
		t.Errorf("List with dangling index = %v, want ErrCorrupt", err)
	}
}

func TestIndexKeyOrder(t *testing.T) {
	times := []time.Time{
		{},
		time.Date(1900, 1, 1, 0, 0, 0, 999999999, time.UTC),
		time.Unix(-1, 0),
		time.Unix(-1, 1),
		time.Unix(0, 0),
		time.Unix(0, 1),
		time.Unix(1, 0),
		time.Date(9999, 12, 31, 23, 59, 59, 999999999, time.UTC),
	}
	for i := 1; i < len(times); i++ {
		a, b := indexKey(times[i-1], "z"), indexKey(times[i], "a")
		if string(a) >= string(b) {
			t.Errorf("index key of %v sorts after %v", times[i-1], times[i])
		}
	}
	if string(indexKey(base, "a")) >= string(indexKey(base, "b")) || string(indexKey(base, "a")) >= string(indexKey(base, "aa")) {
		t.Error("kids out of order")
	}
}

// Get's decode cache is checked against the stored bytes: a record changed
// by any means is read fresh, and deleted kids leave the cache.
func TestDecodeCacheNeverStale(t *testing.T) {
	s := openT(t, filepath.Join(t.TempDir(), "keys.db"))
	if err := s.Create(ctx, storetest.NewKey("k", "p", base)); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Get(ctx, "k"); err != nil {
		t.Fatal(err)
	}
	r, err := recordOf(storetest.NewKey("k", "p", base))
	if err != nil {
		t.Fatal(err)
	}
	r.Label = "written behind the cache"
	b, _ := json.Marshal(r)
	if err := s.db.Update(func(tx *bolt.Tx) error { return tx.Bucket(bucketKeys).Put([]byte("k"), b) }); err != nil {
		t.Fatal(err)
	}
	if k, err := s.Get(ctx, "k"); err != nil || k.Label != r.Label {
		t.Fatalf("Get after a raw write: label %q, %v", k.Label, err)
	}
	if err := s.Delete(ctx, "p", "k"); err != nil {
		t.Fatal(err)
	}
	if _, ok := s.decoded.Load("k"); ok || s.nDecoded.Load() != 0 {
		t.Fatalf("deleted kid still cached (%d entries)", s.nDecoded.Load())
	}
}
