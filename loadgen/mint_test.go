package loadgen

import (
	"bytes"
	"context"
	"errors"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jwtgate/jwtgate/engine"
	"github.com/jwtgate/jwtgate/engine/enginetest"
	vegeta "github.com/tsenart/vegeta/v12/lib"
)

// testKeyring uses the fixed test keys (generating RSA keys is slow).
func testKeyring(t testing.TB) *Keyring {
	t.Helper()
	r := &Keyring{Project: "myapp"}
	for _, n := range []string{"rsa2048-a", "rsa2048-b"} {
		r.Keys = append(r.Keys, NewSigningKey(enginetest.Key(n)))
	}
	ik := NewSigningKey(enginetest.Key("rsa2048-c"))
	ik.Inactive = true
	r.Keys = append(r.Keys, ik)
	return r
}

func allMix() Mix {
	var m Mix
	for _, c := range MintableClasses() {
		m.Weights[c] = 1
	}
	return m
}

func mintTargets(t *testing.T, cfg MintConfig) ([]vegeta.Target, *Manifest) {
	t.Helper()
	var buf bytes.Buffer
	m, err := Mint(context.Background(), &buf, cfg)
	if err != nil {
		t.Fatal(err)
	}
	if n := bytes.Count(buf.Bytes(), []byte("\n")); n != cfg.Count {
		t.Fatalf("wrote %d lines, want %d", n, cfg.Count)
	}
	tr := vegeta.NewJSONTargeter(&buf, nil, nil)
	var out []vegeta.Target
	for {
		var tg vegeta.Target
		err := tr(&tg)
		if errors.Is(err, vegeta.ErrNoTargets) {
			break
		}
		if err != nil {
			t.Fatalf("vegeta cannot read target %d: %v", len(out), err)
		}
		out = append(out, tg)
	}
	return out, m
}

// TestMintedClassesVerifyAsExpected verifies every minted token with the
// engine over a store holding the keyring's public keys: each class must
// get exactly its code.
func TestMintedClassesVerifyAsExpected(t *testing.T) {
	ring := testKeyring(t)
	mix := allMix()
	const perClass = 12 // covers every variant of every class
	tgts, man := mintTargets(t, MintConfig{Keyring: ring, Count: perClass * mix.Total(), Mix: mix,
		URL: "http://127.0.0.1:8080/v1/verify", Workers: 3})
	store, err := ring.MemoryStore(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	v, err := engine.New(store, engine.WithTokenCacheSize(0))
	if err != nil {
		t.Fatal(err)
	}
	seen := map[Class]int{}
	for i, tg := range tgts {
		exp, ok := ParseClass(tg.Header.Get(ExpectHeader))
		if !ok {
			t.Fatalf("target %d: bad %s %q", i, ExpectHeader, tg.Header.Get(ExpectHeader))
		}
		seen[exp]++
		if tg.Method != http.MethodGet || tg.URL != "http://127.0.0.1:8080/v1/verify" {
			t.Fatalf("target %d: %s %s", i, tg.Method, tg.URL)
		}
		auth := tg.Header.Get("Authorization")
		tok, _ := strings.CutPrefix(auth, "Bearer ")
		if exp == Class(engine.CodeMissingToken) != (auth == "") {
			t.Fatalf("target %d (%s): Authorization %q", i, exp, auth)
		}
		_, err := v.Verify([]byte(tok))
		if got := Class(engine.CodeOf(err)); got != exp {
			t.Errorf("target %d: minted as %s, engine says %s (%v)", i, exp, got, err)
		}
	}
	for _, c := range MintableClasses() {
		if seen[c] != perClass {
			t.Errorf("class %s: %d tokens, want %d", c, seen[c], perClass)
		}
		if man.Classes[c.String()] != perClass {
			t.Errorf("manifest class %s: %d, want %d", c, man.Classes[c.String()], perClass)
		}
	}
	if man.Count != len(tgts) || man.Project != "myapp" || len(man.Keys) != 3 {
		t.Errorf("manifest: %+v", man)
	}
	// Only the classes that need a genuine signature paid for one.
	wantSigs := 0
	for _, c := range MintableClasses() {
		if needsSignature(c) {
			wantSigs += perClass
		}
	}
	if man.Signatures != wantSigs {
		t.Errorf("signatures: %d, want %d", man.Signatures, wantSigs)
	}
}

func TestMintUniqueReusesValidTokens(t *testing.T) {
	ring := testKeyring(t)
	mix, _ := ParseMix("valid=9,expired=1")
	var mu sync.Mutex
	var maxDone, lastDone int64
	totals := map[int64]bool{}
	progress := func(done, total int64) {
		mu.Lock()
		defer mu.Unlock()
		maxDone, lastDone = max(maxDone, done), done
		totals[total] = true
	}
	tgts, man := mintTargets(t, MintConfig{Keyring: ring, Count: 1000, Mix: mix, Unique: 7,
		URL: "http://localhost:8080/v1/verify", Progress: progress})
	// The progress counts targets, up to --count: the distinct tokens
	// signed first are not counted past it.
	if len(totals) != 1 || !totals[1000] || maxDone > 1000 || lastDone != 1000 {
		t.Errorf("progress: totals %v, max done %d, last %d; want total 1000 and done ending at 1000", totals, maxDone, lastDone)
	}
	distinct := map[string]int{}
	for _, tg := range tgts {
		if tg.Header.Get(ExpectHeader) == "valid" {
			distinct[tg.Header.Get("Authorization")]++
		}
	}
	if len(distinct) != 7 {
		t.Fatalf("%d distinct valid tokens, want 7", len(distinct))
	}
	if man.Signatures != 7+100 {
		t.Errorf("signatures %d, want 107 (7 unique valid + 100 expired)", man.Signatures)
	}
	// Interleaving: the first period already holds both classes.
	if tgts[0].Header.Get(ExpectHeader) == tgts[9].Header.Get(ExpectHeader) && tgts[5].Header.Get(ExpectHeader) == "valid" {
		var n int
		for _, tg := range tgts[:10] {
			if tg.Header.Get(ExpectHeader) == "expired" {
				n++
			}
		}
		if n != 1 {
			t.Errorf("first 10 targets hold %d expired, want 1", n)
		}
	}
}

func TestManifestStaleness(t *testing.T) {
	now := time.Unix(1_700_000_000, 0)
	m := &Manifest{MintedAt: now, ValidUntil: now.Add(10 * time.Minute)}
	if s := m.Staleness(now.Add(time.Minute), time.Minute); s != "" {
		t.Errorf("fresh file: %q", s)
	}
	if s := m.Staleness(now.Add(9*time.Minute), 5*time.Minute); !strings.Contains(s, "into this") {
		t.Errorf("expiring during run: %q", s)
	}
	if s := m.Staleness(now.Add(11*time.Minute), time.Minute); !strings.Contains(s, "mint again") {
		t.Errorf("stale file: %q", s)
	}
}

func TestMintRefusesBadConfig(t *testing.T) {
	ring := testKeyring(t)
	mix, _ := ParseMix("valid=1,key_inactive=1")
	noInactive := &Keyring{Project: "myapp", Keys: ring.Active()}
	for name, cfg := range map[string]MintConfig{
		"no keys":        {Count: 1, Mix: mix, URL: "http://127.0.0.1/"},
		"zero count":     {Keyring: ring, Count: 0, Mix: mix, URL: "http://127.0.0.1/"},
		"no inactive":    {Keyring: noInactive, Count: 1, Mix: mix, URL: "http://127.0.0.1/"},
		"ttl too long":   {Keyring: ring, Count: 1, Mix: mix, URL: "http://127.0.0.1/", TTL: time.Hour},
		"reserved claim": {Keyring: ring, Count: 1, Mix: mix, URL: "http://127.0.0.1/", Claims: map[string]string{"exp": "1"}},
	} {
		if _, err := Mint(context.Background(), &bytes.Buffer{}, cfg); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
}

// TestMintRequiredClaims: with --claim, valid tokens pass a server that
// requires those claims, and every other class keeps its code.
func TestMintRequiredClaims(t *testing.T) {
	ring := testKeyring(t)
	mix := allMix()
	tgts, _ := mintTargets(t, MintConfig{Keyring: ring, Count: 2 * mix.Total(), Mix: mix,
		URL: "http://127.0.0.1:8080/v1/verify", Claims: map[string]string{"groupRef": "g-1", "consumerRef": "c \"1\""}})
	store, _ := ring.MemoryStore(context.Background())
	v, err := engine.New(store, engine.WithRequiredClaims("groupRef", "consumerRef"), engine.WithTokenCacheSize(0))
	if err != nil {
		t.Fatal(err)
	}
	for i, tg := range tgts {
		exp, _ := ParseClass(tg.Header.Get(ExpectHeader))
		tok, _ := strings.CutPrefix(tg.Header.Get("Authorization"), "Bearer ")
		c, err := v.Verify([]byte(tok))
		if got := Class(engine.CodeOf(err)); got != exp {
			t.Errorf("target %d: minted as %s, engine says %s", i, exp, got)
		}
		if exp == Valid {
			if g, _ := c.String("consumerRef"); string(g) != `c "1"` {
				t.Errorf("consumerRef = %q", g)
			}
		}
	}
}
