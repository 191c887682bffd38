package boltstore

import (
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/jwtgate/jwtgate/store/storetest"
)

func benchStore(b *testing.B, n int, project func(i int) string) (*Store, []string) {
	b.Helper()
	s := openT(b, filepath.Join(b.TempDir(), "keys.db"))
	kids := make([]string, n)
	for i := range kids {
		kids[i] = fmt.Sprintf("kid-%06d", i)
		if err := s.Create(ctx, storetest.NewKey(kids[i], project(i), base.Add(time.Duration(i)*time.Second))); err != nil {
			b.Fatal(err)
		}
	}
	return s, kids
}

// BenchmarkGet is the Verifier's key-cache-miss path: one Get of a stored
// key out of 256.
func BenchmarkGet(b *testing.B) {
	s, kids := benchStore(b, 256, func(int) string { return "proj" })
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		if _, err := s.Get(ctx, kids[i%len(kids)]); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkGetParallel is Get from all cores at once.
func BenchmarkGetParallel(b *testing.B) {
	s, kids := benchStore(b, 256, func(int) string { return "proj" })
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		i := 0
		for pb.Next() {
			if _, err := s.Get(ctx, kids[i%len(kids)]); err != nil {
				b.Error(err)
				return
			}
			i++
		}
	})
}

// BenchmarkList lists a project of 32 keys in a store of 256 keys over 8
// projects.
func BenchmarkList(b *testing.B) {
	s, _ := benchStore(b, 256, func(i int) string { return fmt.Sprintf("proj-%d", i%8) })
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		l, err := s.List(ctx, "proj-3")
		if err != nil || len(l) != 32 {
			b.Fatal(len(l), err)
		}
	}
}

// BenchmarkGetUncached is Get with its decode cache emptied before each
// call: JSON and PKIX decoding of the record every time (a first Get).
func BenchmarkGetUncached(b *testing.B) {
	s, kids := benchStore(b, 256, func(int) string { return "proj" })
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		kid := kids[i%len(kids)]
		s.forget(kid)
		if _, err := s.Get(ctx, kid); err != nil {
			b.Fatal(err)
		}
	}
}
