package pgstore_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jwtgate/jwtgate/admin"
	"github.com/jwtgate/jwtgate/engine"
	"github.com/jwtgate/jwtgate/internal/pgtest"
	"github.com/jwtgate/jwtgate/store/pgstore"
	"github.com/jwtgate/jwtgate/store/storetest"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

// open returns a Store on a fresh database, closed when t ends.
func open(t *testing.T, dsn string, opts ...pgstore.Option) *pgstore.Store {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	s, err := pgstore.Open(ctx, dsn, opts...)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func TestConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T) engine.KeyStore {
		return open(t, pgtest.Start(t), pgstore.WithoutListener())
	})
}

func TestRegistry(t *testing.T) {
	storetest.RunRegistry(t, func(t *testing.T) engine.KeyStore {
		return open(t, pgtest.Start(t), pgstore.WithoutListener())
	})
}

func TestAdminConformance(t *testing.T) {
	storetest.RunAdmin(t, func(t *testing.T) storetest.AdminStore {
		return open(t, pgtest.Start(t), pgstore.WithoutListener())
	})
}

func TestSchemaVersionedAndIdempotent(t *testing.T) {
	dsn := pgtest.Start(t)
	s1 := open(t, dsn)
	var versions []int
	rows, err := s1.Pool().Query(context.Background(), "SELECT version FROM jwtgate_schema_migrations ORDER BY version")
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var v int
		_ = rows.Scan(&v)
		versions = append(versions, v)
	}
	rows.Close()
	if len(versions) != pgstore.SchemaVersion || versions[len(versions)-1] != pgstore.SchemaVersion {
		t.Fatalf("schema versions %v, want 1..%d", versions, pgstore.SchemaVersion)
	}
	// Opening again migrates nothing and keeps data.
	ctx := context.Background()
	if err := s1.Create(ctx, storetest.NewKey("kept", "p", time.Now().UTC().Truncate(time.Microsecond))); err != nil {
		t.Fatal(err)
	}
	s2 := open(t, dsn)
	if _, err := s2.Get(ctx, "kept"); err != nil {
		t.Fatalf("after reopening: %v", err)
	}
	// A database from a newer jwtgate is refused with a clear error.
	if _, err := s1.Pool().Exec(ctx, "INSERT INTO jwtgate_schema_migrations (version) VALUES ($1)", pgstore.SchemaVersion+1); err != nil {
		t.Fatal(err)
	}
	_, err = pgstore.Open(ctx, dsn)
	if err == nil || !strings.Contains(err.Error(), "upgrade jwtgate") {
		t.Fatalf("Open on a newer schema: %v, want an error saying to upgrade", err)
	}
}

func TestConcurrentStartsMigrateOnce(t *testing.T) {
	dsn := pgtest.Start(t)
	const n = 6
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			s, err := pgstore.Open(context.Background(), dsn, pgstore.WithoutListener())
			if err != nil {
				errs <- err
				return
			}
			s.Close()
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Errorf("concurrent Open: %v", err)
	}
	s := open(t, dsn, pgstore.WithoutListener())
	var rows int
	if err := s.Pool().QueryRow(context.Background(), "SELECT count(*) FROM jwtgate_schema_migrations").Scan(&rows); err != nil {
		t.Fatal(err)
	}
	if rows != pgstore.SchemaVersion {
		t.Fatalf("%d migration rows after %d concurrent starts, want %d", rows, n, pgstore.SchemaVersion)
	}
}

func TestBadDSNOption(t *testing.T) {
	_, err := pgstore.Open(context.Background(), "postgres://u@127.0.0.1:1/db?jwtgate_max_stale=soon")
	if err == nil || !strings.Contains(err.Error(), "jwtgate_max_stale") {
		t.Fatalf("Open with a bad jwtgate_max_stale: %v", err)
	}
}

// recorder is an Invalidator that records what it is told.
type recorder struct {
	mu   sync.Mutex
	kids []string
	all  int
	ch   chan string
}

func newRecorder() *recorder { return &recorder{ch: make(chan string, 1024)} }

func (r *recorder) Invalidate(kid string) {
	r.mu.Lock()
	r.kids = append(r.kids, kid)
	r.mu.Unlock()
	r.ch <- kid
}

func (r *recorder) InvalidateAll() {
	r.mu.Lock()
	r.all++
	r.mu.Unlock()
	select {
	case r.ch <- "*all*":
	default:
	}
}

// expect waits for an invalidation that covers kid: Invalidate(kid) or
// InvalidateAll.
func (r *recorder) expect(t *testing.T, kid string) {
	t.Helper()
	deadline := time.After(5 * time.Second)
	for {
		select {
		case got := <-r.ch:
			if got == kid || got == "*all*" {
				return
			}
		case <-deadline:
			t.Fatalf("no invalidation of %q within 5s", kid)
		}
	}
}

func metric(s *pgstore.Store, name string) string {
	var b strings.Builder
	s.WriteMetrics(&b)
	for _, line := range strings.Split(b.String(), "\n") {
		if v, ok := strings.CutPrefix(line, name+" "); ok {
			return v
		}
	}
	return ""
}

func TestNotifications(t *testing.T) {
	dsn := pgtest.Start(t)
	a := open(t, dsn)
	b := open(t, dsn)
	rec := newRecorder()
	b.SetInvalidator(rec)
	rec.expect(t, "*all*") // SetInvalidator drops what was cached before
	ctx := context.Background()
	now := time.Now().UTC().Truncate(time.Microsecond)

	if err := a.Create(ctx, storetest.NewKey("k1", "p", now)); err != nil {
		t.Fatal(err)
	}
	rec.expect(t, "k1")
	inactive := engine.StatusInactive
	if _, err := a.Update(ctx, "p", "k1", engine.KeyUpdate{Status: &inactive}, now); err != nil {
		t.Fatal(err)
	}
	rec.expect(t, "k1")
	// Usage updates are not announced.
	if err := a.RecordUsage(ctx, []engine.Usage{{KID: "k1", Count: 3, LastUsed: now}}); err != nil {
		t.Fatal(err)
	}
	if err := a.Delete(ctx, "p", "k1"); err != nil {
		t.Fatal(err)
	}
	rec.expect(t, "k1")
	if n := metric(b, "jwtgate_store_notifications_total"); n != "3" {
		t.Fatalf("%s notifications, want 3: create, update, delete (usage is not announced)", n)
	}
	// A change by hand is announced too; TRUNCATE drops everything.
	if _, err := a.Pool().Exec(ctx, "TRUNCATE jwtgate_keys"); err != nil {
		t.Fatal(err)
	}
	rec.expect(t, "*all*")
}

func TestUsageSummedAcrossNodes(t *testing.T) {
	dsn := pgtest.Start(t)
	ctx := context.Background()
	base := time.Now().UTC().Truncate(time.Second)
	nodes := []*pgstore.Store{open(t, dsn, pgstore.WithoutListener()), open(t, dsn, pgstore.WithoutListener()), open(t, dsn, pgstore.WithoutListener())}
	for i := range 5 {
		if err := nodes[0].Create(ctx, storetest.NewKey(fmt.Sprintf("u%d", i), "p", base)); err != nil {
			t.Fatal(err)
		}
	}
	// Every node flushes batches naming the keys in different orders, at
	// once, many times: counts add up, last_used is the latest, no deadlock.
	var wg sync.WaitGroup
	for ni, n := range nodes {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for round := range 20 {
				var batch []engine.Usage
				for i := range 5 {
					k := (i + ni*2 + round) % 5
					batch = append(batch, engine.Usage{KID: fmt.Sprintf("u%d", k), Count: 1, LastUsed: base.Add(time.Duration(ni*100+round) * time.Second)})
				}
				batch = append(batch, engine.Usage{KID: "unknown", Count: 7, LastUsed: base})
				if err := n.RecordUsage(ctx, batch); err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	for i := range 5 {
		k, err := nodes[1].Get(ctx, fmt.Sprintf("u%d", i))
		if err != nil {
			t.Fatal(err)
		}
		if k.VerifiedCount != 60 {
			t.Errorf("%s: verified_count %d, want 60 (3 nodes x 20 flushes)", k.KID, k.VerifiedCount)
		}
		if want := base.Add(219 * time.Second); !k.LastUsedAt.Equal(want) {
			t.Errorf("%s: last_used_at %v, want %v", k.KID, k.LastUsedAt, want)
		}
	}
}

func TestConcurrentCreateSameKID(t *testing.T) {
	dsn := pgtest.Start(t)
	ctx := context.Background()
	var nodes []*pgstore.Store
	for range 4 {
		nodes = append(nodes, open(t, dsn, pgstore.WithoutListener()))
	}
	now := time.Now().UTC().Truncate(time.Microsecond)
	for round := range 10 {
		kid := fmt.Sprintf("race-%d", round)
		var wg sync.WaitGroup
		results := make([]error, len(nodes))
		for i, n := range nodes {
			wg.Add(1)
			go func() {
				defer wg.Done()
				results[i] = n.Create(ctx, storetest.NewKey(kid, fmt.Sprintf("p%d", i), now))
			}()
		}
		wg.Wait()
		ok := 0
		for _, err := range results {
			switch {
			case err == nil:
				ok++
			case errors.Is(err, engine.ErrKIDTaken):
			default:
				t.Fatalf("Create: %v", err)
			}
		}
		if ok != 1 {
			t.Fatalf("round %d: %d creations succeeded, want exactly 1", round, ok)
		}
	}
}

func TestNoKeysLoadedAtStart(t *testing.T) {
	dsn := pgtest.Start(t)
	ctx := context.Background()
	s := open(t, dsn, pgstore.WithoutListener())
	seed := storetest.NewKey("seed", "p", time.Now().UTC().Truncate(time.Microsecond))
	if err := s.Create(ctx, seed); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Pool().Exec(ctx, `INSERT INTO jwtgate_keys (kid, project, label, status, public_key, created_at, updated_at)
		SELECT 'bulk-' || g, 'p' || (g % 1000), '', 'active', k.public_key, now(), now()
		FROM generate_series(1, 100000) g, (SELECT public_key FROM jwtgate_keys WHERE kid = 'seed') k`); err != nil {
		t.Fatal(err)
	}
	// Hold a lock that blocks every read of the key table: a node that
	// loaded keys at start could not start.
	tx, err := s.Pool().Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tx.Exec(ctx, "LOCK TABLE jwtgate_keys IN ACCESS EXCLUSIVE MODE"); err != nil {
		t.Fatal(err)
	}
	octx, cancel := context.WithTimeout(ctx, 10*time.Second)
	s2, err := pgstore.Open(octx, dsn)
	cancel()
	if err != nil {
		tx.Rollback(ctx)
		t.Fatalf("Open while the key table cannot be read: %v (does it load keys at start?)", err)
	}
	defer s2.Close()
	if !s2.Connected() {
		t.Error("listener not connected after Open")
	}
	// The first lookup reads one row by primary key, once the lock is gone.
	if err := tx.Rollback(ctx); err != nil {
		t.Fatal(err)
	}
	k, err := s2.Get(ctx, "bulk-12345")
	if err != nil || k.Project != "p345" {
		t.Fatalf("Get: %v %v", k, err)
	}
	var plan string
	if err := s2.Pool().QueryRow(ctx, "EXPLAIN SELECT kid FROM jwtgate_keys WHERE kid = 'bulk-1'").Scan(&plan); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(plan, "Index") {
		t.Fatalf("lookup by kid is not an index scan: %s", plan)
	}
}

// TestMaxStaleSettings: the staleness bound is on by default (5 s, polled
// every second); the URL's jwtgate_max_stale and jwtgate_poll_interval set
// them, an option given to Open wins over the URL, and a bound not longer
// than the poll interval is refused with a message saying what to change.
func TestMaxStaleSettings(t *testing.T) {
	dsn := pgtest.Start(t)
	for _, c := range []struct {
		dsn  string
		opts []pgstore.Option
		want string
	}{
		{dsn, nil, "5.000"},
		{withParam(dsn, "jwtgate_max_stale", "3s"), nil, "3.000"},
		{withParam(dsn, "jwtgate_max_stale", "3s"), []pgstore.Option{pgstore.WithMaxStale(4 * time.Second)}, "4.000"},
		{dsn, []pgstore.Option{pgstore.WithMaxStale(0)}, "0.000"},
	} {
		s := open(t, c.dsn, c.opts...)
		if got := metric(s, "jwtgate_store_max_stale_seconds"); got != c.want {
			t.Errorf("%s %d options: max stale %s, want %s", c.dsn, len(c.opts), got, c.want)
		}
	}
	for _, bad := range []string{
		withParam(dsn, "jwtgate_max_stale", "1s"),
		withParam(withParam(dsn, "jwtgate_max_stale", "2s"), "jwtgate_poll_interval", "3s"),
	} {
		if s, err := pgstore.Open(context.Background(), bad); err == nil || !strings.Contains(err.Error(), "poll interval") {
			if s != nil {
				s.Close()
			}
			t.Errorf("Open(%s): %v, want a refusal naming the poll interval", bad, err)
		}
	}
	if _, err := pgstore.Open(context.Background(), withParam(dsn, "jwtgate_poll_interval", "0s")); err == nil || !strings.Contains(err.Error(), "jwtgate_poll_interval") {
		t.Errorf("jwtgate_poll_interval=0s: %v", err)
	}
}

// TestChangeRevision: the change revision moves once per transaction that
// changes keys (a bulk import of many keys: once), whoever makes the change
// (also TRUNCATE by hand), and not for usage updates.
func TestChangeRevision(t *testing.T) {
	dsn := pgtest.Start(t)
	s := open(t, dsn, pgstore.WithoutListener())
	ctx := context.Background()
	rev := func() int64 {
		t.Helper()
		var r int64
		if err := s.Pool().QueryRow(ctx, "SELECT rev FROM jwtgate_revision").Scan(&r); err != nil {
			t.Fatal(err)
		}
		return r
	}
	step := func(what string, want int64, fn func() error) {
		t.Helper()
		before := rev()
		if err := fn(); err != nil {
			t.Fatalf("%s: %v", what, err)
		}
		if got := rev() - before; got != want {
			t.Errorf("%s moved the revision by %d, want %d", what, got, want)
		}
	}
	now := time.Now().UTC().Truncate(time.Microsecond)
	step("create", 1, func() error { return s.Create(ctx, storetest.NewKey("k1", "p", now)) })
	step("import of 3 keys", 1, func() error {
		return s.ImportKeys(ctx, []*engine.Key{storetest.NewKey("i1", "p", now), storetest.NewKey("i2", "p", now), storetest.NewKey("i3", "p", now)})
	})
	step("usage", 0, func() error {
		return s.RecordUsage(ctx, []engine.Usage{{KID: "k1", Count: 5, LastUsed: now}, {KID: "i1", Count: 1, LastUsed: now}})
	})
	label := "renamed"
	step("update", 1, func() error { _, err := s.Update(ctx, "p", "k1", engine.KeyUpdate{Label: &label}, now); return err })
	step("delete", 1, func() error { return s.Delete(ctx, "p", "i2") })
	step("statement changing 2 rows", 1, func() error {
		_, err := s.Pool().Exec(ctx, "UPDATE jwtgate_keys SET status = 'inactive' WHERE kid IN ('i1', 'i3')")
		return err
	})
	step("TRUNCATE", 1, func() error { _, err := s.Pool().Exec(ctx, "TRUNCATE jwtgate_keys"); return err })
}

func TestJWKSSourceConformance(t *testing.T) {
	storetest.RunJWKS(t, func(t *testing.T) admin.JWKSSourceStore {
		return open(t, pgtest.Start(t), pgstore.WithoutListener())
	})
}
