// Package storetest is the conformance suite of engine.KeyStore and
// engine.UsageRecorder implementations. Every store (the embedded bbolt
// store, the PostgreSQL store, engine.MemoryStore) runs it from its tests:
//
//	func TestConformance(t *testing.T) {
//		storetest.Run(t, func(t *testing.T) engine.KeyStore {
//			s := openMyStore(t)
//			t.Cleanup(func() { s.Close() })
//			return s
//		})
//	}
//
// open must return a new, empty store each time it is called (it is called
// once per subtest) and arrange its cleanup with t.Cleanup. Times used by
// the suite are whole microseconds (what the Verifier writes and what
// PostgreSQL keeps).
package storetest

import (
	"context"
	"crypto/rsa"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jwtgate/jwtgate/engine"
	"github.com/jwtgate/jwtgate/engine/enginetest"
)

// base is the suite's reference time (whole microseconds, UTC).
var base = time.Date(2025, 3, 14, 15, 9, 26, 535897000, time.UTC)

func pubA() *rsa.PublicKey { return &enginetest.Key("rsa2048-a").PublicKey }
func pubB() *rsa.PublicKey { return &enginetest.Key("rsa2048-b").PublicKey }

// NewKey returns an active key for the tests: kid, project, label, the
// fixed public key rsa2048-a, CreatedAt = UpdatedAt = created.
func NewKey(kid, project string, created time.Time) *engine.Key {
	return &engine.Key{
		KID: kid, Project: project, Label: "label of " + kid,
		Status: engine.StatusActive, Public: pubA(),
		CreatedAt: created, UpdatedAt: created,
	}
}

// Run runs the conformance suite against the stores open returns. The store
// must implement engine.UsageRecorder too.
func Run(t *testing.T, open func(t *testing.T) engine.KeyStore) {
	t.Helper()
	ctx := context.Background()

	t.Run("GetUnknown", func(t *testing.T) {
		s := open(t)
		if _, err := s.Get(ctx, "nope"); !errors.Is(err, engine.ErrKeyNotFound) {
			t.Fatalf("Get(unknown) = %v, want ErrKeyNotFound", err)
		}
	})

	t.Run("CreateGetRoundTrip", func(t *testing.T) {
		s := open(t)
		k := NewKey("kid-1", "proj", base)
		k.Label = "Ünïcode label \"quoted\" <tag>"
		k.Public = &enginetest.Key("rsa4096").PublicKey
		k.UpdatedAt = base.Add(time.Second)
		mustCreate(t, s, k)
		got := mustGet(t, s, "kid-1")
		EqualKey(t, got, k)
		if !got.LastUsedAt.IsZero() || got.VerifiedCount != 0 {
			t.Fatalf("new key has usage: last_used=%v count=%d", got.LastUsedAt, got.VerifiedCount)
		}
		// An inactive key keeps its status.
		k2 := NewKey("kid-2", "proj", base)
		k2.Status = engine.StatusInactive
		k2.Public = pubB()
		mustCreate(t, s, k2)
		EqualKey(t, mustGet(t, s, "kid-2"), k2)
	})

	t.Run("ReturnsCopies", func(t *testing.T) {
		s := open(t)
		k := NewKey("kid-1", "proj", base)
		mustCreate(t, s, k)
		k.Label, k.Project, k.Status = "changed after create", "other", engine.StatusInactive
		want := NewKey("kid-1", "proj", base)
		g := mustGet(t, s, "kid-1")
		EqualKey(t, g, want)
		g.Label, g.Status = "changed after get", engine.StatusInactive
		EqualKey(t, mustGet(t, s, "kid-1"), want)
		l, err := s.List(ctx, "proj")
		if err != nil || len(l) != 1 {
			t.Fatalf("List = %d keys, %v; want 1", len(l), err)
		}
		l[0].Label = "changed after list"
		EqualKey(t, mustGet(t, s, "kid-1"), want)
		label := "x"
		u, err := s.Update(ctx, "proj", "kid-1", engine.KeyUpdate{Label: &label}, base)
		if err != nil {
			t.Fatal(err)
		}
		u.Label = "changed after update"
		if g := mustGet(t, s, "kid-1"); g.Label != "x" {
			t.Fatalf("label = %q after changing Update's result, want x", g.Label)
		}
	})

	t.Run("CreateKIDTaken", func(t *testing.T) {
		s := open(t)
		orig := NewKey("dup", "proj-a", base)
		mustCreate(t, s, orig)
		same := NewKey("dup", "proj-a", base.Add(time.Hour))
		same.Label = "second"
		if err := s.Create(ctx, same); !errors.Is(err, engine.ErrKIDTaken) {
			t.Fatalf("Create(same kid, same project) = %v, want ErrKIDTaken", err)
		}
		other := NewKey("dup", "proj-b", base.Add(time.Hour))
		other.Public = pubB()
		if err := s.Create(ctx, other); !errors.Is(err, engine.ErrKIDTaken) {
			t.Fatalf("Create(same kid, other project) = %v, want ErrKIDTaken", err)
		}
		EqualKey(t, mustGet(t, s, "dup"), orig)
		mustList(t, s, "proj-a", "dup")
		mustList(t, s, "proj-b")
	})

	t.Run("CreateConcurrentSameKID", func(t *testing.T) {
		s := open(t)
		const n = 8
		var wg sync.WaitGroup
		var ok, taken atomic.Int32
		errs := make(chan error, n)
		for i := range n {
			wg.Add(1)
			go func() {
				defer wg.Done()
				k := NewKey("race", fmt.Sprintf("proj-%d", i), base)
				switch err := s.Create(ctx, k); {
				case err == nil:
					ok.Add(1)
				case errors.Is(err, engine.ErrKIDTaken):
					taken.Add(1)
				default:
					errs <- err
				}
			}()
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Fatalf("Create: %v", err)
		}
		if ok.Load() != 1 || taken.Load() != n-1 {
			t.Fatalf("%d creates succeeded and %d got ErrKIDTaken; want 1 and %d", ok.Load(), taken.Load(), n-1)
		}
		g := mustGet(t, s, "race")
		mustList(t, s, g.Project, "race")
	})

	t.Run("Update", func(t *testing.T) {
		s := open(t)
		mustCreate(t, s, NewKey("k", "proj", base))
		want := NewKey("k", "proj", base)

		label := "new label"
		t1 := base.Add(time.Minute)
		got, err := s.Update(ctx, "proj", "k", engine.KeyUpdate{Label: &label}, t1)
		if err != nil {
			t.Fatalf("Update(label): %v", err)
		}
		want.Label, want.UpdatedAt = label, t1
		EqualKey(t, got, want)
		EqualKey(t, mustGet(t, s, "k"), want)

		inactive := engine.StatusInactive
		t2 := t1.Add(time.Minute)
		got, err = s.Update(ctx, "proj", "k", engine.KeyUpdate{Status: &inactive}, t2)
		if err != nil {
			t.Fatalf("Update(status): %v", err)
		}
		want.Status, want.UpdatedAt = inactive, t2
		EqualKey(t, got, want)
		EqualKey(t, mustGet(t, s, "k"), want)

		active, empty := engine.StatusActive, ""
		t3 := t2.Add(time.Minute)
		got, err = s.Update(ctx, "proj", "k", engine.KeyUpdate{Label: &empty, Status: &active}, t3)
		if err != nil {
			t.Fatalf("Update(both): %v", err)
		}
		want.Label, want.Status, want.UpdatedAt = "", active, t3
		EqualKey(t, got, want)

		t4 := t3.Add(time.Minute)
		got, err = s.Update(ctx, "proj", "k", engine.KeyUpdate{}, t4)
		if err != nil {
			t.Fatalf("Update(nothing): %v", err)
		}
		want.UpdatedAt = t4
		EqualKey(t, got, want)
		EqualKey(t, mustGet(t, s, "k"), want)
		mustList(t, s, "proj", "k")
	})

	t.Run("UpdateWrongProjectOrUnknown", func(t *testing.T) {
		s := open(t)
		k := NewKey("k", "proj", base)
		mustCreate(t, s, k)
		label := "hijacked"
		inactive := engine.StatusInactive
		u := engine.KeyUpdate{Label: &label, Status: &inactive}
		if _, err := s.Update(ctx, "other", "k", u, base.Add(time.Hour)); !errors.Is(err, engine.ErrKeyNotFound) {
			t.Fatalf("Update(other project) = %v, want ErrKeyNotFound", err)
		}
		if _, err := s.Update(ctx, "proj", "unknown", u, base.Add(time.Hour)); !errors.Is(err, engine.ErrKeyNotFound) {
			t.Fatalf("Update(unknown kid) = %v, want ErrKeyNotFound", err)
		}
		EqualKey(t, mustGet(t, s, "k"), k)
		mustList(t, s, "other")
		if _, err := s.Get(ctx, "unknown"); !errors.Is(err, engine.ErrKeyNotFound) {
			t.Fatalf("Update of unknown kid created it: Get = %v", err)
		}
	})

	t.Run("Delete", func(t *testing.T) {
		s := open(t)
		mustCreate(t, s, NewKey("k1", "proj", base))
		mustCreate(t, s, NewKey("k2", "proj", base.Add(time.Second)))
		if err := s.Delete(ctx, "other", "k1"); !errors.Is(err, engine.ErrKeyNotFound) {
			t.Fatalf("Delete(other project) = %v, want ErrKeyNotFound", err)
		}
		mustGet(t, s, "k1")
		if err := s.Delete(ctx, "proj", "unknown"); !errors.Is(err, engine.ErrKeyNotFound) {
			t.Fatalf("Delete(unknown) = %v, want ErrKeyNotFound", err)
		}
		if err := s.Delete(ctx, "proj", "k1"); err != nil {
			t.Fatalf("Delete: %v", err)
		}
		if _, err := s.Get(ctx, "k1"); !errors.Is(err, engine.ErrKeyNotFound) {
			t.Fatalf("Get after Delete = %v, want ErrKeyNotFound", err)
		}
		if err := s.Delete(ctx, "proj", "k1"); !errors.Is(err, engine.ErrKeyNotFound) {
			t.Fatalf("second Delete = %v, want ErrKeyNotFound", err)
		}
		mustList(t, s, "proj", "k2")
		// The kid is free again, in any project, with a new creation time.
		re := NewKey("k1", "other", base.Add(time.Hour))
		re.Public = pubB()
		mustCreate(t, s, re)
		EqualKey(t, mustGet(t, s, "k1"), re)
		mustList(t, s, "proj", "k2")
		mustList(t, s, "other", "k1")
		// Deleting the last key of a project leaves it empty and usable.
		if err := s.Delete(ctx, "other", "k1"); err != nil {
			t.Fatal(err)
		}
		mustList(t, s, "other")
		mustCreate(t, s, NewKey("k3", "other", base))
		mustList(t, s, "other", "k3")
	})

	t.Run("ListOrderAndScope", func(t *testing.T) {
		s := open(t)
		mustList(t, s, "empty")
		// Created out of order; ties on CreatedAt are broken by kid.
		type c struct {
			kid string
			at  time.Time
		}
		creates := []c{
			{"m", base.Add(2 * time.Second)},
			{"b", base.Add(2 * time.Second)},
			{"z", base},
			{"a", base.Add(3 * time.Second)},
			{"B", base.Add(2 * time.Second)}, // "B" < "b" < "m" bytewise
			{"y", base.Add(time.Microsecond)},
			{"x", base.Add(-48 * time.Hour)},
			{"old", time.Date(1960, 1, 1, 0, 0, 0, 1000, time.UTC)}, // before 1970
		}
		rand.Shuffle(len(creates), func(i, j int) { creates[i], creates[j] = creates[j], creates[i] })
		for i, cr := range creates {
			mustCreate(t, s, NewKey(cr.kid, "proj", cr.at))
			mustCreate(t, s, NewKey(fmt.Sprintf("other-%d", i), "proj-other", cr.at))
		}
		mustCreate(t, s, NewKey("pro", "pro", base)) // prefix of "proj"
		mustList(t, s, "proj", "old", "x", "z", "y", "B", "b", "m", "a")
		mustList(t, s, "pro", "pro")
		mustList(t, s, "pr")
		// Updates do not move a key.
		label := "l"
		if _, err := s.Update(ctx, "proj", "old", engine.KeyUpdate{Label: &label}, base.Add(time.Hour)); err != nil {
			t.Fatal(err)
		}
		mustList(t, s, "proj", "old", "x", "z", "y", "B", "b", "m", "a")
		if err := s.Delete(ctx, "proj", "B"); err != nil {
			t.Fatal(err)
		}
		got := mustList(t, s, "proj", "old", "x", "z", "y", "b", "m", "a")
		if got[0].Label != "l" {
			t.Fatalf("List shows label %q, want the updated one", got[0].Label)
		}
		for _, k := range got {
			if k.Project != "proj" || k.Public == nil || !k.Public.Equal(pubA()) {
				t.Fatalf("List returned key %q with project %q / wrong public key", k.KID, k.Project)
			}
		}
	})

	t.Run("RecordUsage", func(t *testing.T) {
		s := open(t)
		rec := recorder(t, s)
		mustCreate(t, s, NewKey("k1", "proj", base))
		mustCreate(t, s, NewKey("k2", "proj", base))
		if err := rec.RecordUsage(ctx, nil); err != nil {
			t.Fatalf("RecordUsage(nil): %v", err)
		}
		t1 := base.Add(time.Minute)
		err := rec.RecordUsage(ctx, []engine.Usage{
			{KID: "k1", Count: 3, LastUsed: t1},
			{KID: "unknown", Count: 7, LastUsed: t1},
			{KID: "k1", Count: 2, LastUsed: t1.Add(-time.Second)},
		})
		if err != nil {
			t.Fatalf("RecordUsage: %v", err)
		}
		if _, err := s.Get(ctx, "unknown"); !errors.Is(err, engine.ErrKeyNotFound) {
			t.Fatalf("RecordUsage created an unknown kid: Get = %v", err)
		}
		checkUsage(t, s, "k1", 5, t1)
		checkUsage(t, s, "k2", 0, time.Time{})

		// Older last-used times never move it back; counts still add.
		if err := rec.RecordUsage(ctx, []engine.Usage{{KID: "k1", Count: 10, LastUsed: base}}); err != nil {
			t.Fatal(err)
		}
		checkUsage(t, s, "k1", 15, t1)
		// A zero time with a count.
		if err := rec.RecordUsage(ctx, []engine.Usage{{KID: "k1", Count: 1}, {KID: "k2", Count: 4}}); err != nil {
			t.Fatal(err)
		}
		checkUsage(t, s, "k1", 16, t1)
		checkUsage(t, s, "k2", 4, time.Time{})
		// Newer moves it forward.
		t2 := t1.Add(time.Hour)
		if err := rec.RecordUsage(ctx, []engine.Usage{{KID: "k1", LastUsed: t2}, {KID: "k2", Count: 1, LastUsed: t1}}); err != nil {
			t.Fatal(err)
		}
		checkUsage(t, s, "k1", 16, t2)
		checkUsage(t, s, "k2", 5, t1)
		// Usage is metadata: it changes neither UpdatedAt nor the rest,
		// and Update keeps the usage.
		want := NewKey("k1", "proj", base)
		want.LastUsedAt, want.VerifiedCount = t2, 16
		EqualKey(t, mustGet(t, s, "k1"), want)
		inactive := engine.StatusInactive
		t3 := t2.Add(time.Hour)
		got, err := s.Update(ctx, "proj", "k1", engine.KeyUpdate{Status: &inactive}, t3)
		if err != nil {
			t.Fatal(err)
		}
		want.Status, want.UpdatedAt = inactive, t3
		EqualKey(t, got, want)
		l := mustList(t, s, "proj", "k1", "k2")
		EqualKey(t, l[0], want)
		// Deleted keys are unknown to usage.
		if err := s.Delete(ctx, "proj", "k2"); err != nil {
			t.Fatal(err)
		}
		if err := rec.RecordUsage(ctx, []engine.Usage{{KID: "k2", Count: 1, LastUsed: t3}}); err != nil {
			t.Fatal(err)
		}
		if _, err := s.Get(ctx, "k2"); !errors.Is(err, engine.ErrKeyNotFound) {
			t.Fatalf("RecordUsage recreated a deleted kid: Get = %v", err)
		}
	})

	t.Run("RecordUsageOfAnotherRegistration", func(t *testing.T) {
		s := open(t)
		rec := recorder(t, s)
		old := NewKey("reused", "old-proj", base)
		mustCreate(t, s, old)
		oldUse := engine.Usage{KID: "reused", Project: "old-proj", Created: base, Count: 5, LastUsed: base.Add(time.Minute)}
		if err := rec.RecordUsage(ctx, []engine.Usage{oldUse}); err != nil {
			t.Fatal(err)
		}
		checkUsage(t, s, "reused", 5, base.Add(time.Minute))
		if err := s.Delete(ctx, "old-proj", "reused"); err != nil {
			t.Fatal(err)
		}
		// The kid registered again: another project, another time.
		created := base.Add(time.Hour)
		nk := NewKey("reused", "new-proj", created)
		nk.Public = pubB()
		mustCreate(t, s, nk)
		checkUsage(t, s, "reused", 0, time.Time{})
		// Usage the old registration counted (flushed late, e.g. by another
		// node) is not the new key's; nor is usage of the same project at
		// another creation time.
		sameProjOldTime := engine.Usage{KID: "reused", Project: "new-proj", Created: base, Count: 2, LastUsed: created.Add(time.Minute)}
		if err := rec.RecordUsage(ctx, []engine.Usage{oldUse, sameProjOldTime}); err != nil {
			t.Fatal(err)
		}
		checkUsage(t, s, "reused", 0, time.Time{})
		// The new registration's own usage counts, alone or in one batch
		// with the old one's.
		newUse := engine.Usage{KID: "reused", Project: "new-proj", Created: created, Count: 3, LastUsed: created.Add(time.Second)}
		if err := rec.RecordUsage(ctx, []engine.Usage{oldUse, newUse, oldUse}); err != nil {
			t.Fatal(err)
		}
		checkUsage(t, s, "reused", 3, created.Add(time.Second))
		// Usage that names no registration applies to the kid as before.
		if err := rec.RecordUsage(ctx, []engine.Usage{{KID: "reused", Count: 1}}); err != nil {
			t.Fatal(err)
		}
		checkUsage(t, s, "reused", 4, created.Add(time.Second))
	})

	t.Run("RecordUsageConcurrent", func(t *testing.T) {
		s := open(t)
		rec := recorder(t, s)
		mustCreate(t, s, NewKey("k", "proj", base))
		const workers, batches = 4, 10
		var wg sync.WaitGroup
		errs := make(chan error, workers*batches)
		for w := range workers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for b := range batches {
					at := base.Add(time.Duration(w*batches+b) * time.Second)
					if err := rec.RecordUsage(ctx, []engine.Usage{{KID: "k", Count: 1, LastUsed: at}}); err != nil {
						errs <- err
					}
				}
			}()
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Fatalf("RecordUsage: %v", err)
		}
		checkUsage(t, s, "k", workers*batches, base.Add(time.Duration(workers*batches-1)*time.Second))
	})

	t.Run("ConcurrentReadersAndWriters", func(t *testing.T) {
		s := open(t)
		for i := range 20 {
			mustCreate(t, s, NewKey(fmt.Sprintf("seed-%02d", i), "proj", base.Add(time.Duration(i)*time.Second)))
		}
		var wg sync.WaitGroup
		errs := make(chan error, 64)
		for w := range 2 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := range 10 {
					kid := fmt.Sprintf("w%d-%02d", w, i)
					if err := s.Create(ctx, NewKey(kid, "proj", base.Add(time.Hour))); err != nil {
						errs <- err
						return
					}
					if i%2 == 0 {
						if err := s.Delete(ctx, "proj", kid); err != nil {
							errs <- err
							return
						}
					}
				}
			}()
		}
		for r := range 4 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := range 50 {
					k, err := s.Get(ctx, fmt.Sprintf("seed-%02d", (i+r)%20))
					if err != nil || k.Project != "proj" {
						errs <- fmt.Errorf("Get during writes: %v", err)
						return
					}
					if i%10 == 0 {
						l, err := s.List(ctx, "proj")
						if err != nil || len(l) < 20 {
							errs <- fmt.Errorf("List during writes: %d keys, %v", len(l), err)
							return
						}
					}
				}
			}()
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Fatal(err)
		}
		l, err := s.List(ctx, "proj")
		if err != nil || len(l) != 30 {
			t.Fatalf("List = %d keys, %v; want 30", len(l), err)
		}
	})
}

func recorder(t *testing.T, s engine.KeyStore) engine.UsageRecorder {
	t.Helper()
	rec, ok := s.(engine.UsageRecorder)
	if !ok {
		t.Fatalf("%T does not implement engine.UsageRecorder", s)
	}
	return rec
}

func mustCreate(t *testing.T, s engine.KeyStore, k *engine.Key) {
	t.Helper()
	if err := s.Create(context.Background(), k); err != nil {
		t.Fatalf("Create(%q): %v", k.KID, err)
	}
}

func mustGet(t *testing.T, s engine.KeyStore, kid string) *engine.Key {
	t.Helper()
	k, err := s.Get(context.Background(), kid)
	if err != nil {
		t.Fatalf("Get(%q): %v", kid, err)
	}
	if k.KID != kid {
		t.Fatalf("Get(%q) returned kid %q", kid, k.KID)
	}
	return k
}

// mustList checks that List(project) returns exactly kids, in that order.
func mustList(t *testing.T, s engine.KeyStore, project string, kids ...string) []*engine.Key {
	t.Helper()
	l, err := s.List(context.Background(), project)
	if err != nil {
		t.Fatalf("List(%q): %v", project, err)
	}
	got := make([]string, len(l))
	for i, k := range l {
		got[i] = k.KID
	}
	if fmt.Sprint(got) != fmt.Sprint(kids) {
		t.Fatalf("List(%q) = %v, want %v", project, got, kids)
	}
	return l
}

func checkUsage(t *testing.T, s engine.KeyStore, kid string, count uint64, last time.Time) {
	t.Helper()
	k := mustGet(t, s, kid)
	if k.VerifiedCount != count || !k.LastUsedAt.Equal(last) {
		t.Fatalf("%s: verified_count=%d last_used=%v; want %d and %v", kid, k.VerifiedCount, k.LastUsedAt, count, last)
	}
}

// EqualKey fails the test unless got and want have the same fields (times
// compared with Equal, public keys with Equal).
func EqualKey(t *testing.T, got, want *engine.Key) {
	t.Helper()
	if got == nil {
		t.Fatalf("got nil key, want %q", want.KID)
	}
	var diffs []string
	add := func(name string, g, w any) { diffs = append(diffs, fmt.Sprintf("%s=%v want %v", name, g, w)) }
	if got.KID != want.KID {
		add("kid", got.KID, want.KID)
	}
	if got.Project != want.Project {
		add("project", got.Project, want.Project)
	}
	if got.Label != want.Label {
		add("label", got.Label, want.Label)
	}
	if got.Status != want.Status {
		add("status", got.Status, want.Status)
	}
	if got.Public == nil || !got.Public.Equal(want.Public) {
		add("public key", "(different)", "(equal)")
	}
	if !got.CreatedAt.Equal(want.CreatedAt) {
		add("created_at", got.CreatedAt, want.CreatedAt)
	}
	if !got.UpdatedAt.Equal(want.UpdatedAt) {
		add("updated_at", got.UpdatedAt, want.UpdatedAt)
	}
	if !got.LastUsedAt.Equal(want.LastUsedAt) {
		add("last_used_at", got.LastUsedAt, want.LastUsedAt)
	}
	if got.VerifiedCount != want.VerifiedCount {
		add("verified_count", got.VerifiedCount, want.VerifiedCount)
	}
	if len(diffs) > 0 {
		t.Fatalf("key %q differs: %v", want.KID, diffs)
	}
}
