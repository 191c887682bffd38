package storetest

import (
	"context"
	"errors"
	"reflect"
	"sync"
	"testing"
	"time"

	"github.com/jwtgate/jwtgate/admin"
)

// RunJWKS runs the conformance suite of admin.JWKSSourceStore against the
// stores open returns (a new, empty store per call).
func RunJWKS(t *testing.T, open func(t *testing.T) admin.JWKSSourceStore) {
	t.Helper()
	ctx := context.Background()
	put := func(t *testing.T, s admin.JWKSSourceStore, src *admin.JWKSSource) {
		t.Helper()
		if err := s.UpdateJWKSSource(ctx, src.Project, func(*admin.JWKSSource) (*admin.JWKSSource, error) { return src, nil }); err != nil {
			t.Fatalf("UpdateJWKSSource(%s): %v", src.Project, err)
		}
	}

	t.Run("PutGetListDelete", func(t *testing.T) {
		s := open(t)
		if _, err := s.GetJWKSSource(ctx, "proj-a"); !errors.Is(err, admin.ErrSourceNotFound) {
			t.Fatalf("Get of a missing source = %v, want ErrSourceNotFound", err)
		}
		if err := s.DeleteJWKSSource(ctx, "proj-a"); !errors.Is(err, admin.ErrSourceNotFound) {
			t.Fatalf("Delete of a missing source = %v, want ErrSourceNotFound", err)
		}
		a := &admin.JWKSSource{Project: "proj-a", URL: "https://idp.example/jwks.json", Refresh: 5 * time.Minute, Grace: 24 * time.Hour,
			CreatedAt: base, UpdatedAt: base, ETag: `"v1"`, LastFetch: base.Add(time.Second), Imported: []string{"k1", "k2"},
			KeyErrors: map[string]string{"k3": "kid taken"}, Missing: map[string]time.Time{"k0": base}}
		b := &admin.JWKSSource{Project: "proj-b", URL: "https://other.example/keys", Refresh: time.Minute, CreatedAt: base, UpdatedAt: base}
		put(t, s, a)
		put(t, s, b)
		got, err := s.GetJWKSSource(ctx, "proj-a")
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(normSource(got), normSource(a)) {
			t.Fatalf("Get = %+v, want %+v", got, a)
		}
		all, err := s.ListJWKSSources(ctx)
		if err != nil || len(all) != 2 {
			t.Fatalf("List = %d sources, %v; want 2", len(all), err)
		}
		if err := s.DeleteJWKSSource(ctx, "proj-a"); err != nil {
			t.Fatal(err)
		}
		if _, err := s.GetJWKSSource(ctx, "proj-a"); !errors.Is(err, admin.ErrSourceNotFound) {
			t.Fatalf("Get after Delete = %v, want ErrSourceNotFound", err)
		}
		if all, _ := s.ListJWKSSources(ctx); len(all) != 1 || all[0].Project != "proj-b" {
			t.Fatalf("List after Delete = %+v, want only proj-b", all)
		}
	})

	t.Run("UpdateAbortAndKeep", func(t *testing.T) {
		s := open(t)
		put(t, s, &admin.JWKSSource{Project: "p", URL: "https://a.example/"})
		boom := errors.New("boom")
		err := s.UpdateJWKSSource(ctx, "p", func(cur *admin.JWKSSource) (*admin.JWKSSource, error) {
			cur.URL = "https://changed.example/"
			return cur, boom
		})
		if !errors.Is(err, boom) {
			t.Fatalf("Update whose fn failed = %v, want its error", err)
		}
		if err := s.UpdateJWKSSource(ctx, "p", func(*admin.JWKSSource) (*admin.JWKSSource, error) { return nil, nil }); err != nil {
			t.Fatal(err)
		}
		if got, _ := s.GetJWKSSource(ctx, "p"); got == nil || got.URL != "https://a.example/" {
			t.Fatalf("after an aborted and an empty update the source is %+v, want the URL unchanged", got)
		}
	})

	t.Run("UpdatesTakeTurns", func(t *testing.T) {
		s := open(t)
		put(t, s, &admin.JWKSSource{Project: "p", URL: "https://a.example/"})
		var wg sync.WaitGroup
		const n = 8
		for range n {
			wg.Add(1)
			go func() {
				defer wg.Done()
				if err := s.UpdateJWKSSource(ctx, "p", func(cur *admin.JWKSSource) (*admin.JWKSSource, error) {
					cur.Imported = append(cur.Imported, "x")
					return cur, nil
				}); err != nil {
					t.Error(err)
				}
			}()
		}
		wg.Wait()
		if got, _ := s.GetJWKSSource(ctx, "p"); got == nil || len(got.Imported) != n {
			t.Fatalf("after %d concurrent read-modify-writes Imported has %d entries, want %d (lost updates)", n, len(got.Imported), n)
		}
	})
}

func normSource(s *admin.JWKSSource) admin.JWKSSource {
	c := *s
	for _, t := range []*time.Time{&c.CreatedAt, &c.UpdatedAt, &c.LastAttempt, &c.LastFetch, &c.NextFetch, &c.LeaseUntil} {
		*t = t.UTC()
	}
	m := map[string]time.Time{}
	for k, v := range c.Missing {
		m[k] = v.UTC()
	}
	c.Missing = m
	return c
}
