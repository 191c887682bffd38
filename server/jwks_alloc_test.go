//go:build !race

package server

import (
	"testing"

	"github.com/jwtgate/jwtgate/engine/enginetest"
)

// TestUnknownKIDSignalAllocs: a token with an unknown kid for a project
// with a JWKS source costs the verify path no allocation (the signal to
// the importer is a map lookup, an atomic and a non-blocking send), and a
// flood of them, for that project or any other, sends one signal per
// interval and grows nothing.
func TestUnknownKIDSignalAllocs(t *testing.T) {
	s := newHandlerServer(t)
	s.jwksImp = newImporter(s, nil, JWKSImportConfig{})
	sig := &srcSignal{}
	srcs := map[string]*srcSignal{"myapp": sig}
	s.jwksImp.srcs.Store(&srcs)
	h := s.VerifyHandler()
	tok := token(enginetest.Key("rsa2048-a"), "rotated-in", "myapp", now(), 300, nil)
	for _, q := range []string{"?project=myapp", "?project=nosource"} {
		ctx := verifyCtx(tok, q)
		allocs := testing.AllocsPerRun(500, func() {
			ctx.Response.Reset()
			h(ctx)
		})
		if ctx.Response.StatusCode() != 401 {
			t.Fatalf("%s: status %d, want 401", q, ctx.Response.StatusCode())
		}
		if allocs != 0 {
			t.Fatalf("%s: %v allocations per unknown-kid request, want 0", q, allocs)
		}
	}
	if !sig.wanted.Load() || len(s.jwksImp.kick) != 1 {
		t.Fatalf("the importer was not signalled (wanted %v, kick %d)", sig.wanted.Load(), len(s.jwksImp.kick))
	}
	first := sig.last.Load()
	sig.wanted.Store(false)
	<-s.jwksImp.kick
	ctx := verifyCtx(tok, "?project=myapp")
	for range 1000 {
		ctx.Response.Reset()
		h(ctx)
	}
	if sig.wanted.Load() || len(s.jwksImp.kick) != 0 || sig.last.Load() != first {
		t.Fatal("a second signal within the interval")
	}
	if m := s.jwksImp.srcs.Load(); len(*m) != 1 {
		t.Fatalf("the importer's project map grew to %d entries from unknown kids", len(*m))
	}
}
