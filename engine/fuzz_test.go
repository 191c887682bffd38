package engine_test

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/jwtgate/jwtgate/engine"
	et "github.com/jwtgate/jwtgate/engine/enginetest"
)

// FuzzVerify feeds arbitrary tokens to Verify. Properties: it never panics;
// it returns nil or exactly one of the sentinel codes; it never accepts a
// token that golang-jwt (with the same rules) refuses; and a second
// verification (through the token cache) gives the same verdict.
func FuzzVerify(f *testing.F) {
	files, _ := filepath.Glob(et.Testdata("tokens", "*.jwt"))
	if len(files) == 0 {
		f.Fatal("no seeds in testdata/tokens")
	}
	for _, file := range files {
		b, err := os.ReadFile(file)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(strings.TrimSpace(string(b)))
	}
	for _, s := range []string{"", ".", "..", "a.b.c", "e30.e30.", "e30.e30.e30", strings.Repeat(".", 1<<20), "eyJhbGciOiJSUzI1NiJ9\r\n.e30.AA"} {
		f.Add(s)
	}
	fx, ref := diffSetup(f)
	cached := newFixture(f, engine.WithRequiredClaims("groupRef"))
	c := new(engine.Claims)
	detailed := fx.v.DetailedErrors()
	f.Fuzz(func(t *testing.T, tok string) {
		err := fx.v.VerifyInto([]byte(tok), c)
		if err != nil {
			// Every error is preallocated: its code's sentinel, or one of
			// the Verifier's detailed errors (which claim is missing).
			var ee *engine.Error
			if !errors.As(err, &ee) || engine.ErrorFor(ee.Code) != err && !slices.Contains(detailed, ee) {
				t.Fatalf("error %v is not a sentinel code", err)
			}
		} else if rerr := ref.verify(tok); rerr != nil {
			t.Fatalf("engine accepts a token golang-jwt refuses (%v): %q", rerr, tok)
		}
		e1 := cached.v.VerifyInto([]byte(tok), c)
		e2 := cached.v.VerifyInto([]byte(tok), c)
		if e1 != e2 || (e1 == nil) != (err == nil) {
			t.Fatalf("verdicts differ: uncached %v, cached %v then %v", err, e1, e2)
		}
	})
}
