package storetest

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jwtgate/jwtgate/engine"
	"github.com/jwtgate/jwtgate/engine/enginetest"
)

// Counting wraps a store and counts the reads the Verifier makes of it:
// Get (one key) and List (a project's keys, for JWKS). The registry
// interfaces (engine.RegistryScanner, engine.RecentKeysLoader,
// engine.ChangeFeed) and engine.UsageRecorder are passed through; those the
// store lacks are no-ops.
type Counting struct {
	engine.KeyStore
	Gets, Lists, Scans atomic.Int64
}

// Get implements engine.KeyStore.
func (c *Counting) Get(ctx context.Context, kid string) (*engine.Key, error) {
	c.Gets.Add(1)
	return c.KeyStore.Get(ctx, kid)
}

// List implements engine.KeyStore.
func (c *Counting) List(ctx context.Context, project string) ([]*engine.Key, error) {
	c.Lists.Add(1)
	return c.KeyStore.List(ctx, project)
}

// ScanKIDs implements engine.RegistryScanner.
func (c *Counting) ScanKIDs(ctx context.Context, fn func(kid, project []byte)) error {
	c.Scans.Add(1)
	sc, ok := c.KeyStore.(engine.RegistryScanner)
	if !ok {
		return errors.New("storetest: the store cannot scan its kids")
	}
	return sc.ScanKIDs(ctx, fn)
}

// RecentKeys implements engine.RecentKeysLoader.
func (c *Counting) RecentKeys(ctx context.Context, n int) ([]*engine.Key, error) {
	if r, ok := c.KeyStore.(engine.RecentKeysLoader); ok {
		return r.RecentKeys(ctx, n)
	}
	return nil, nil
}

// SetInvalidator implements engine.ChangeFeed.
func (c *Counting) SetInvalidator(inv engine.Invalidator) {
	if f, ok := c.KeyStore.(engine.ChangeFeed); ok {
		f.SetInvalidator(inv)
	}
}

// RecordUsage implements engine.UsageRecorder.
func (c *Counting) RecordUsage(ctx context.Context, batch []engine.Usage) error {
	if r, ok := c.KeyStore.(engine.UsageRecorder); ok {
		return r.RecordUsage(ctx, batch)
	}
	return nil
}

// Reads is the number of Get and List calls so far.
func (c *Counting) Reads() int64 { return c.Gets.Load() + c.Lists.Load() }

// Importer is implemented by stores that bulk-load keys.
type Importer interface {
	ImportKeys(ctx context.Context, keys []*engine.Key) error
}

// UnknownKIDToken returns a token whose header names kid, with a valid
// shape and claims but a signature no key made: what a client flooding
// unknown kids sends (the kid is looked up before the signature is
// checked).
func UnknownKIDToken(kid, project string, now time.Time) []byte {
	b64 := func(v any) string {
		j, _ := json.Marshal(v)
		return base64.RawURLEncoding.EncodeToString(j)
	}
	return []byte(b64(enginetest.Header(kid)) + "." + b64(enginetest.Claims(project, now.Unix(), 300)) + "." +
		base64.RawURLEncoding.EncodeToString(make([]byte, 256)))
}

// RunRegistry checks a store's registry interfaces (it must implement
// engine.RegistryScanner and Importer) through a Verifier: the index of
// kids, a flood of unknown kids and of unknown JWKS projects that reach the
// store at most 100 times, JWKS cached until a change, and changes made
// through the Verifier taking effect at once.
func RunRegistry(t *testing.T, open func(t *testing.T) engine.KeyStore) {
	t.Helper()
	ctx := context.Background()
	st := open(t)
	imp, ok := st.(Importer)
	if !ok {
		t.Fatalf("%T does not implement ImportKeys", st)
	}
	if _, ok := st.(engine.RegistryScanner); !ok {
		t.Fatalf("%T does not implement engine.RegistryScanner", st)
	}
	const n = 2000
	keys := make([]*engine.Key, n)
	for i := range keys {
		keys[i] = NewKey("reg-"+strconv.Itoa(i), "proj-"+strconv.Itoa(i%50), base.Add(time.Duration(i)*time.Microsecond))
		if i == 5 { // a label that looks like the fields a scan may read
			keys[i].Label = `x","project":"evil","last_used_at":"2099-01-01T00:00:00Z`
		}
		if i >= 100 && i < 110 {
			keys[i].LastUsedAt = base.Add(time.Duration(i) * time.Hour)
		}
	}
	if err := imp.ImportKeys(ctx, keys); err != nil {
		t.Fatal(err)
	}
	if err := imp.ImportKeys(ctx, []*engine.Key{NewKey("reg-7", "proj-x", base)}); !errors.Is(err, engine.ErrKIDTaken) {
		t.Fatalf("ImportKeys of a taken kid = %v, want ErrKIDTaken", err)
	}
	seen := map[string]string{}
	if err := st.(engine.RegistryScanner).ScanKIDs(ctx, func(kid, project []byte) { seen[string(kid)] = string(project) }); err != nil {
		t.Fatal(err)
	}
	if len(seen) != n || seen["reg-1234"] != "proj-34" || seen["reg-5"] != "proj-5" {
		t.Fatalf("ScanKIDs saw %d kids (reg-1234 in %q), want %d (proj-34)", len(seen), seen["reg-1234"], n)
	}

	if rk, ok := st.(engine.RecentKeysLoader); ok {
		got, err := rk.RecentKeys(ctx, 4)
		if err != nil {
			t.Fatal(err)
		}
		var kids []string
		for _, k := range got {
			kids = append(kids, k.KID)
		}
		if fmt.Sprint(kids) != "[reg-109 reg-108 reg-107 reg-106]" || !got[0].LastUsedAt.Equal(keys[109].LastUsedAt) || got[0].Public.N.Cmp(keys[109].Public.N) != 0 {
			t.Fatalf("RecentKeys(4) = %v, want reg-109 to reg-106 with their key material", kids)
		}
	}

	cs := &Counting{KeyStore: st}
	now := time.Now()
	v, err := engine.New(cs, engine.WithClock(func() time.Time { return now }))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(v.Close)
	select {
	case <-v.Ready():
	case <-time.After(20 * time.Second):
		t.Fatal("registry index not loaded within 20 s")
	}
	if s := v.Stats(); !s.IndexReady || s.IndexedKIDs != n {
		t.Fatalf("index: ready %v with %d kids, want ready with %d", s.IndexReady, s.IndexedKIDs, n)
	}
	// All keys fit in the default key cache: the most recently used are
	// read at start, so that none costs a store read on first use.
	if s, rep := v.Stats(), v.LastLoad(); rep.Warmed != n || s.KeySize != n || s.KeyLoads != 0 {
		t.Fatalf("warming: %d keys warmed, %d held, %d read one by one; want %d, %d, 0", rep.Warmed, s.KeySize, s.KeyLoads, n, n)
	}

	t.Run("UnknownKIDFlood", func(t *testing.T) {
		before := cs.Reads()
		c := new(engine.Claims)
		for i := range 100_000 {
			err := v.VerifyInto(UnknownKIDToken("flood-"+strconv.Itoa(i), "proj-1", now), c)
			if !errors.Is(err, engine.ErrUnknownKID) {
				t.Fatalf("unknown kid %d: %v, want ErrUnknownKID", i, err)
			}
		}
		if got := cs.Reads() - before; got > 100 {
			t.Fatalf("100,000 distinct unknown kids made %d store reads, want at most 100", got)
		}
		// A registered kid still reaches its key (the bad signature is the
		// verdict, not unknown_kid).
		if err := v.VerifyInto(UnknownKIDToken("reg-42", "proj-42", now), c); !errors.Is(err, engine.ErrInvalidSignature) {
			t.Fatalf("registered kid with a bad signature: %v, want ErrInvalidSignature", err)
		}
	})

	t.Run("JWKS", func(t *testing.T) {
		before := cs.Lists.Load()
		for i := range 20_000 {
			if _, found, err := v.JWKS(ctx, "nope-"+strconv.Itoa(i)); err != nil || found {
				t.Fatalf("JWKS of an unknown project: found %v, %v", found, err)
			}
		}
		if got := cs.Lists.Load() - before; got > 100 {
			t.Fatalf("20,000 unknown projects made %d store lists, want at most 100", got)
		}
		body, found, err := v.JWKS(ctx, "proj-3")
		if err != nil || !found {
			t.Fatalf("JWKS(proj-3): found %v, %v", found, err)
		}
		var set struct{ Keys []engine.JWK }
		if err := json.Unmarshal(body, &set); err != nil || len(set.Keys) != n/50 {
			t.Fatalf("JWKS(proj-3) has %d keys (%v), want %d", len(set.Keys), err, n/50)
		}
		lists := cs.Lists.Load()
		for range 1000 {
			if _, _, err := v.JWKS(ctx, "proj-3"); err != nil {
				t.Fatal(err)
			}
		}
		if got := cs.Lists.Load() - lists; got != 0 {
			t.Fatalf("1,000 JWKS requests of one project made %d store lists, want 0 (cached)", got)
		}
		// A change takes effect at once: a new key in a new project.
		if _, err := v.AddKey(ctx, &engine.Key{KID: "reg-new", Project: "proj-new", Public: pubB()}); err != nil {
			t.Fatal(err)
		}
		if _, found, err := v.JWKS(ctx, "proj-new"); err != nil || !found {
			t.Fatalf("JWKS of a project created just now: found %v, %v", found, err)
		}
		inactive := engine.StatusInactive
		if _, err := v.UpdateKey(ctx, "proj-3", "reg-3", engine.KeyUpdate{Status: &inactive}); err != nil {
			t.Fatal(err)
		}
		body, _, _ = v.JWKS(ctx, "proj-3")
		if err := json.Unmarshal(body, &set); err != nil || len(set.Keys) != n/50-1 {
			t.Fatalf("after deactivating a key JWKS(proj-3) has %d keys, want %d", len(set.Keys), n/50-1)
		}
	})

	t.Run("ChangesTakeEffect", func(t *testing.T) {
		c := new(engine.Claims)
		// Created through the Verifier: known at once.
		if _, err := v.AddKey(ctx, &engine.Key{KID: "reg-added", Project: "proj-1", Public: pubA()}); err != nil {
			t.Fatal(err)
		}
		if err := v.VerifyInto(UnknownKIDToken("reg-added", "proj-1", now), c); !errors.Is(err, engine.ErrInvalidSignature) {
			t.Fatalf("kid added through the Verifier: %v, want it found (ErrInvalidSignature)", err)
		}
		// Created behind the Verifier's back and announced (a change feed):
		// known once Invalidate returns.
		if err := st.Create(ctx, NewKey("reg-elsewhere", "proj-other", base)); err != nil {
			t.Fatal(err)
		}
		if err := v.VerifyInto(UnknownKIDToken("reg-elsewhere", "proj-other", now), c); !errors.Is(err, engine.ErrUnknownKID) && !errors.Is(err, engine.ErrInvalidSignature) {
			t.Fatal(err)
		}
		v.Invalidate("reg-elsewhere")
		if err := v.VerifyInto(UnknownKIDToken("reg-elsewhere", "proj-other", now), c); !errors.Is(err, engine.ErrInvalidSignature) {
			t.Fatalf("kid announced by Invalidate: %v, want it found (ErrInvalidSignature)", err)
		}
		deadline := time.Now().Add(10 * time.Second)
		for {
			if _, found, err := v.JWKS(ctx, "proj-other"); err == nil && found {
				break
			}
			if time.Now().After(deadline) {
				t.Fatal("JWKS of a project announced by Invalidate not found within 10 s")
			}
			time.Sleep(10 * time.Millisecond)
		}
		// Deleted: unknown at once.
		if err := v.DeleteKey(ctx, "proj-1", "reg-added"); err != nil {
			t.Fatal(err)
		}
		if err := v.VerifyInto(UnknownKIDToken("reg-added", "proj-1", now), c); !errors.Is(err, engine.ErrUnknownKID) {
			t.Fatalf("deleted kid: %v, want ErrUnknownKID", err)
		}
		// InvalidateAll reloads the index.
		scans := cs.Scans.Load()
		v.InvalidateAll()
		deadline = time.Now().Add(20 * time.Second)
		for !v.Stats().IndexReady || cs.Scans.Load() == scans {
			if time.Now().After(deadline) {
				t.Fatal("index not reloaded within 20 s of InvalidateAll")
			}
			time.Sleep(10 * time.Millisecond)
		}
		if got, want := v.Stats().IndexedKIDs, n+2; got != want {
			t.Fatalf("reloaded index has %d kids, want %d", got, want)
		}
		if err := v.VerifyInto(UnknownKIDToken(fmt.Sprintf("reg-%d", n-1), "proj-49", now), c); !errors.Is(err, engine.ErrInvalidSignature) {
			t.Fatalf("after reload: %v, want the key found", err)
		}
	})
}
