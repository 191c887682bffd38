package storetest

import (
	"context"
	"encoding/json"
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/jwtgate/jwtgate/admin"
	"github.com/jwtgate/jwtgate/engine"
)

// AdminStore is what RunAdmin tests: the audit trail and the scoped admin
// tokens a durable store keeps beside its keys.
type AdminStore interface {
	engine.KeyStore
	admin.AuditStore
	admin.TokenStore
}

// RunAdmin runs the conformance suite of admin.AuditStore and
// admin.TokenStore against the stores open returns (a new, empty store per
// subtest, cleaned up by the caller's t.Cleanup).
func RunAdmin(t *testing.T, open func(t *testing.T) AdminStore) {
	t.Helper()
	ctx := context.Background()

	t.Run("AuditAppendAndFilter", func(t *testing.T) {
		s := open(t)
		k := NewKey("kid-1", "proj-a", base)
		evs := []*admin.Event{
			{Time: base, ActorType: admin.ActorRoot, Action: admin.ActionKeyCreated, Project: "proj-a", KID: "kid-1", After: admin.KeySnapshot(k)},
			{Time: base.Add(time.Second), ActorType: admin.ActorToken, ActorID: "tok_0123456789abcdef", Action: admin.ActionKeyUpdated, Project: "proj-a", KID: "kid-1",
				Before: admin.KeySnapshot(k), After: json.RawMessage(`{"kid":"kid-1","status":"inactive"}`)},
			{Time: base.Add(2 * time.Second), ActorType: admin.ActorRoot, Action: admin.ActionKeyDeleted, Project: "proj-a", KID: "kid-1", Forced: true,
				Before: json.RawMessage(`{"kid":"kid-1","status":"inactive"}`)},
			{Time: base.Add(3 * time.Second), ActorType: admin.ActorRoot, Action: admin.ActionTokenCreated, Project: "proj-b", TokenID: "tok_fedcba9876543210",
				After: json.RawMessage(`{"id":"tok_fedcba9876543210","scope":"read"}`)},
			{Time: base.Add(4 * time.Second), ActorType: admin.ActorSystem, ActorID: "jwks", Action: admin.ActionKeyImported, Project: "proj-b", KID: "kid-2",
				After: json.RawMessage(`{"kid":"kid-2"}`)},
		}
		var last int64
		for i, e := range evs {
			if err := s.AppendAudit(ctx, e); err != nil {
				t.Fatalf("AppendAudit %d: %v", i, err)
			}
			if e.ID <= last {
				t.Fatalf("event %d got ID %d, not above the previous %d", i, e.ID, last)
			}
			last = e.ID
		}
		all := listAudit(t, s, admin.AuditFilter{Limit: 100})
		if len(all) != len(evs) {
			t.Fatalf("ListAudit = %d events, want %d", len(all), len(evs))
		}
		for i, got := range all { // newest first
			equalEvent(t, got, evs[len(evs)-1-i])
		}
		ids := func(f admin.AuditFilter) []int64 {
			t.Helper()
			var out []int64
			for _, e := range listAudit(t, s, f) {
				out = append(out, e.ID)
			}
			return out
		}
		id := func(i int) int64 { return evs[i].ID }
		cases := []struct {
			name string
			f    admin.AuditFilter
			want []int64
		}{
			{"project", admin.AuditFilter{Project: "proj-a", Limit: 100}, []int64{id(2), id(1), id(0)}},
			{"kid", admin.AuditFilter{KID: "kid-2", Limit: 100}, []int64{id(4)}},
			{"action", admin.AuditFilter{Action: admin.ActionKeyUpdated, Limit: 100}, []int64{id(1)}},
			{"since", admin.AuditFilter{Since: base.Add(3 * time.Second), Limit: 100}, []int64{id(4), id(3)}},
			{"until", admin.AuditFilter{Until: base.Add(time.Second), Limit: 100}, []int64{id(0)}},
			{"since+until", admin.AuditFilter{Since: base.Add(time.Second), Until: base.Add(3 * time.Second), Limit: 100}, []int64{id(2), id(1)}},
			{"limit", admin.AuditFilter{Limit: 2}, []int64{id(4), id(3)}},
			{"page 2", admin.AuditFilter{Before: id(3), Limit: 2}, []int64{id(2), id(1)}},
			{"page 3", admin.AuditFilter{Before: id(1), Limit: 2}, []int64{id(0)}},
			{"page beyond", admin.AuditFilter{Before: id(0), Limit: 2}, nil},
			{"project+action+cursor", admin.AuditFilter{Project: "proj-a", Action: admin.ActionKeyCreated, Before: id(4) + 100, Limit: 5}, []int64{id(0)}},
			{"nothing", admin.AuditFilter{Project: "proj-c", Limit: 5}, nil},
		}
		for _, c := range cases {
			if got := ids(c.f); !reflect.DeepEqual(got, c.want) {
				t.Errorf("%s: ListAudit IDs = %v, want %v", c.name, got, c.want)
			}
		}
		if _, err := s.ListAudit(ctx, admin.AuditFilter{}); err == nil {
			t.Error("ListAudit with Limit 0: no error")
		}
		if _, err := s.ListAudit(ctx, admin.AuditFilter{Limit: admin.MaxAuditLimit + 1}); err == nil {
			t.Error("ListAudit over MaxAuditLimit: no error")
		}
	})

	t.Run("AuditInKeyTransaction", func(t *testing.T) {
		s := open(t)
		ev := func(action string) *admin.Event {
			return &admin.Event{Time: base, ActorType: admin.ActorRoot, Action: action, Project: "proj"}
		}
		count := func(want int) {
			t.Helper()
			if l := listAudit(t, s, admin.AuditFilter{Limit: 100}); len(l) != want {
				t.Fatalf("%d audit events, want %d", len(l), want)
			}
		}
		snap := func(raw json.RawMessage) map[string]any {
			t.Helper()
			var m map[string]any
			if err := json.Unmarshal(raw, &m); err != nil {
				t.Fatalf("snapshot %s: %v", raw, err)
			}
			return m
		}
		// Create: recorded with the change; the kid filled in.
		e := ev(admin.ActionKeyCreated)
		if err := s.Create(admin.WithEvent(ctx, e), NewKey("k1", "proj", base)); err != nil {
			t.Fatal(err)
		}
		if !e.Recorded || e.ID == 0 || e.KID != "k1" || e.Before != nil || snap(e.After)["kid"] != "k1" {
			t.Fatalf("create event: %+v", e)
		}
		// A refused change records nothing.
		e = ev(admin.ActionKeyCreated)
		if err := s.Create(admin.WithEvent(ctx, e), NewKey("k1", "proj", base)); !errors.Is(err, engine.ErrKIDTaken) || e.Recorded {
			t.Fatalf("create of a taken kid: %v, recorded %v", err, e.Recorded)
		}
		count(1)
		label := "renamed"
		e = ev(admin.ActionKeyUpdated)
		if _, err := s.Update(admin.WithEvent(ctx, e), "proj", "k1", engine.KeyUpdate{Label: &label}, base.Add(time.Second)); err != nil {
			t.Fatal(err)
		}
		if !e.Recorded || snap(e.Before)["label"] != "label of k1" || snap(e.After)["label"] != "renamed" {
			t.Fatalf("update event: %+v", e)
		}
		e = ev(admin.ActionKeyUpdated)
		if _, err := s.Update(admin.WithEvent(ctx, e), "other", "k1", engine.KeyUpdate{Label: &label}, base); !errors.Is(err, engine.ErrKeyNotFound) || e.Recorded {
			t.Fatalf("update in another project: %v, recorded %v", err, e.Recorded)
		}
		e = ev(admin.ActionKeyDeleted)
		if err := s.Delete(admin.WithEvent(ctx, e), "proj", "k1"); err != nil {
			t.Fatal(err)
		}
		if !e.Recorded || snap(e.Before)["label"] != "renamed" || e.After != nil {
			t.Fatalf("delete event: %+v", e)
		}
		e = ev(admin.ActionKeyDeleted)
		if err := s.Delete(admin.WithEvent(ctx, e), "proj", "k1"); !errors.Is(err, engine.ErrKeyNotFound) || e.Recorded {
			t.Fatalf("second delete: %v, recorded %v", err, e.Recorded)
		}
		// Without an event, a change records nothing.
		mustCreate(t, s, NewKey("k2", "proj", base))
		count(3)
		l := listAudit(t, s, admin.AuditFilter{Limit: 100})
		if l[0].Action != admin.ActionKeyDeleted || l[1].Action != admin.ActionKeyUpdated || l[2].Action != admin.ActionKeyCreated || l[2].KID != "k1" {
			t.Fatalf("audit trail: %v %v %v", l[0].Action, l[1].Action, l[2].Action)
		}
	})

	t.Run("TokenLifecycle", func(t *testing.T) {
		s := open(t)
		t1, secret1 := admin.NewToken("proj-a", admin.ScopeRead, "ci reader", base)
		t2, _ := admin.NewToken("proj-b", admin.ScopeWrite, "", base.Add(time.Second))
		t3, _ := admin.NewToken("proj-a", admin.ScopeWrite, "deployer", base.Add(2*time.Second))
		for _, tk := range []*admin.Token{t1, t2, t3} {
			if err := s.CreateToken(ctx, tk); err != nil {
				t.Fatalf("CreateToken: %v", err)
			}
		}
		got, err := s.TokenByHash(ctx, admin.HashSecret(secret1))
		if err != nil {
			t.Fatalf("TokenByHash: %v", err)
		}
		equalToken(t, got, t1)
		if _, err := s.TokenByHash(ctx, admin.HashSecret(secret1+"x")); !errors.Is(err, admin.ErrTokenNotFound) {
			t.Fatalf("TokenByHash(unknown) = %v, want ErrTokenNotFound", err)
		}
		dupID := t1.Clone()
		dupID.Hash[0] ^= 1
		if err := s.CreateToken(ctx, dupID); !errors.Is(err, admin.ErrTokenExists) {
			t.Fatalf("CreateToken(same id) = %v, want ErrTokenExists", err)
		}
		dupHash := t1.Clone()
		dupHash.ID = "tok_00000000000000ff"
		if err := s.CreateToken(ctx, dupHash); !errors.Is(err, admin.ErrTokenExists) {
			t.Fatalf("CreateToken(same hash) = %v, want ErrTokenExists", err)
		}
		checkList := func(project string, want ...*admin.Token) {
			t.Helper()
			l, err := s.ListTokens(ctx, project)
			if err != nil {
				t.Fatalf("ListTokens(%q): %v", project, err)
			}
			if len(l) != len(want) {
				t.Fatalf("ListTokens(%q) = %d tokens, want %d", project, len(l), len(want))
			}
			for i := range want {
				equalToken(t, l[i], want[i])
			}
		}
		checkList("proj-a", t1, t3)
		checkList("", t1, t2, t3)
		checkList("proj-c")

		revokedAt := base.Add(time.Hour)
		before, err := s.RevokeToken(ctx, t1.ID, revokedAt)
		if err != nil {
			t.Fatalf("RevokeToken: %v", err)
		}
		equalToken(t, before, t1)
		r1 := t1.Clone()
		r1.RevokedAt = revokedAt
		got, err = s.TokenByHash(ctx, t1.Hash)
		if err != nil {
			t.Fatalf("TokenByHash(revoked): %v", err)
		}
		equalToken(t, got, r1)
		checkList("proj-a", r1, t3)
		if _, err := s.RevokeToken(ctx, t1.ID, revokedAt); !errors.Is(err, admin.ErrTokenNotFound) {
			t.Fatalf("RevokeToken twice = %v, want ErrTokenNotFound", err)
		}
		if _, err := s.RevokeToken(ctx, "tok_aaaaaaaaaaaaaaaa", revokedAt); !errors.Is(err, admin.ErrTokenNotFound) {
			t.Fatalf("RevokeToken(unknown) = %v, want ErrTokenNotFound", err)
		}

		// With an audit event in ctx, the record is written with the change.
		t4, _ := admin.NewToken("proj-d", admin.ScopeRead, "", base)
		ce := &admin.Event{Time: base, ActorType: admin.ActorRoot, Action: admin.ActionTokenCreated, Project: "proj-d", TokenID: t4.ID}
		if err := s.CreateToken(admin.WithEvent(ctx, ce), t4); err != nil || !ce.Recorded || ce.ID == 0 || ce.After == nil {
			t.Fatalf("CreateToken with an event: %v, %+v", err, ce)
		}
		dup := &admin.Event{Time: base, ActorType: admin.ActorRoot, Action: admin.ActionTokenCreated}
		if err := s.CreateToken(admin.WithEvent(ctx, dup), t4); !errors.Is(err, admin.ErrTokenExists) || dup.Recorded {
			t.Fatalf("CreateToken(duplicate) with an event: %v, recorded %v", err, dup.Recorded)
		}
		re := &admin.Event{Time: base, ActorType: admin.ActorRoot, Action: admin.ActionTokenRevoked, TokenID: t4.ID}
		if _, err := s.RevokeToken(admin.WithEvent(ctx, re), t4.ID, revokedAt); err != nil || !re.Recorded || re.Project != "proj-d" ||
			!strings.Contains(string(re.Before), `"revoked_at":null`) || strings.Contains(string(re.After), `"revoked_at":null`) {
			t.Fatalf("RevokeToken with an event: %v, %+v", err, re)
		}
		l := listAudit(t, s, admin.AuditFilter{Limit: 10})
		if len(l) != 2 || l[0].Action != admin.ActionTokenRevoked || l[1].Action != admin.ActionTokenCreated || l[0].Project != "proj-d" {
			t.Fatalf("audit trail of the token: %d events", len(l))
		}
	})
}

// AdminOf returns s as an AdminStore, failing the test if it is not one.
func AdminOf(t *testing.T, s engine.KeyStore) AdminStore {
	t.Helper()
	a, ok := s.(AdminStore)
	if !ok {
		t.Fatalf("%T does not implement admin.AuditStore and admin.TokenStore", s)
	}
	return a
}

func listAudit(t *testing.T, s admin.AuditStore, f admin.AuditFilter) []*admin.Event {
	t.Helper()
	l, err := s.ListAudit(context.Background(), f)
	if err != nil {
		t.Fatalf("ListAudit(%+v): %v", f, err)
	}
	return l
}

func equalEvent(t *testing.T, got, want *admin.Event) {
	t.Helper()
	if got.ID != want.ID || !got.Time.Equal(want.Time) || got.ActorType != want.ActorType || got.ActorID != want.ActorID ||
		got.Action != want.Action || got.Project != want.Project || got.KID != want.KID || got.TokenID != want.TokenID || got.Forced != want.Forced {
		t.Fatalf("event = %+v\nwant    %+v", got, want)
	}
	for _, p := range [][2]json.RawMessage{{got.Before, want.Before}, {got.After, want.After}} {
		if !sameJSON(p[0], p[1]) {
			t.Fatalf("event %d: before/after %s, want %s", got.ID, p[0], p[1])
		}
	}
}

func sameJSON(a, b json.RawMessage) bool {
	if len(a) == 0 || len(b) == 0 {
		return len(a) == len(b)
	}
	var x, y any
	if json.Unmarshal(a, &x) != nil || json.Unmarshal(b, &y) != nil {
		return false
	}
	return reflect.DeepEqual(x, y)
}

func equalToken(t *testing.T, got, want *admin.Token) {
	t.Helper()
	if got.ID != want.ID || got.Project != want.Project || got.Scope != want.Scope || got.Label != want.Label ||
		got.Hash != want.Hash || !got.CreatedAt.Equal(want.CreatedAt) || !got.RevokedAt.Equal(want.RevokedAt) {
		t.Fatalf("token = %+v\nwant    %+v", got, want)
	}
}
