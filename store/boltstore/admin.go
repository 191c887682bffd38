package boltstore

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/jwtgate/jwtgate/admin"
	"github.com/jwtgate/jwtgate/engine"
	bolt "go.etcd.io/bbolt"
)

var (
	bucketAudit       = []byte("audit")
	bucketTokens      = []byte("tokens")
	bucketTokenHashes = []byte("token_hashes")
)

var (
	_ admin.AuditStore = (*Store)(nil)
	_ admin.TokenStore = (*Store)(nil)
)

func initAdminBuckets(tx *bolt.Tx) error {
	for _, b := range [][]byte{bucketAudit, bucketTokens, bucketTokenHashes} {
		if _, err := tx.CreateBucketIfNotExists(b); err != nil {
			return err
		}
	}
	return nil
}

// auditRecord is the stored form of an audit event.
type auditRecord struct {
	Time      string          `json:"time"`
	ActorType string          `json:"actor_type"`
	ActorID   string          `json:"actor_id,omitempty"`
	Action    string          `json:"action"`
	Project   string          `json:"project,omitempty"`
	KID       string          `json:"kid,omitempty"`
	TokenID   string          `json:"token_id,omitempty"`
	Forced    bool            `json:"forced,omitempty"`
	Before    json.RawMessage `json:"before,omitempty"`
	After     json.RawMessage `json:"after,omitempty"`
}

// AppendAudit implements admin.AuditStore: the event is on disk when it
// returns nil.
func (s *Store) AppendAudit(ctx context.Context, e *admin.Event) error {
	return s.update(ctx, func(tx *bolt.Tx) error { return appendAuditTx(tx, e) })
}

// appendAuditTx writes e in tx, setting e.ID.
func appendAuditTx(tx *bolt.Tx, e *admin.Event) error {
	val, err := json.Marshal(auditRecord{
		Time: formatTime(e.Time), ActorType: e.ActorType, ActorID: e.ActorID, Action: e.Action,
		Project: e.Project, KID: e.KID, TokenID: e.TokenID, Forced: e.Forced, Before: e.Before, After: e.After,
	})
	if err != nil {
		return fmt.Errorf("boltstore: encode audit event: %w", err)
	}
	b := tx.Bucket(bucketAudit)
	seq, err := b.NextSequence()
	if err != nil {
		return err
	}
	var k [8]byte
	binary.BigEndian.PutUint64(k[:], seq)
	if err := b.Put(k[:], val); err != nil {
		return err
	}
	e.ID = int64(seq)
	return nil
}

// auditInTx records the event ctx carries (admin.WithEvent), if any, in
// tx: the key change and its audit record commit together. before and
// after are the key as it was and became in tx (nil: did not exist).
func auditInTx(ctx context.Context, tx *bolt.Tx, before, after *engine.Key) error {
	e := admin.EventFrom(ctx)
	if e == nil {
		return nil
	}
	admin.SetKeyChange(e, before, after)
	return appendAuditTx(tx, e)
}

// markRecorded tells the caller that the event ctx carries was committed
// with the change.
func markRecorded(ctx context.Context) {
	if e := admin.EventFrom(ctx); e != nil {
		e.Recorded = true
	}
}

// ListAudit implements admin.AuditStore: a walk from the newest event back.
func (s *Store) ListAudit(ctx context.Context, f admin.AuditFilter) ([]*admin.Event, error) {
	if f.Limit < 1 || f.Limit > admin.MaxAuditLimit {
		return nil, fmt.Errorf("boltstore: audit limit must be 1 to %d", admin.MaxAuditLimit)
	}
	var out []*admin.Event
	err := s.view(func(tx *bolt.Tx) error {
		c := tx.Bucket(bucketAudit).Cursor()
		var k, v []byte
		if f.Before > 0 {
			var start [8]byte
			binary.BigEndian.PutUint64(start[:], uint64(f.Before))
			k, v = c.Seek(start[:])
			if k == nil {
				k, v = c.Last()
			}
			for k != nil && bytes.Compare(k, start[:]) >= 0 {
				k, v = c.Prev()
			}
		} else {
			k, v = c.Last()
		}
		for ; k != nil && len(out) < f.Limit; k, v = c.Prev() {
			if err := ctx.Err(); err != nil {
				return err
			}
			if len(k) != 8 {
				return fmt.Errorf("%w: bad audit key", ErrCorrupt)
			}
			var r auditRecord
			if err := json.Unmarshal(v, &r); err != nil {
				return fmt.Errorf("%w: audit event %d: %v", ErrCorrupt, binary.BigEndian.Uint64(k), err)
			}
			t, err := parseTime(r.Time)
			if err != nil {
				return fmt.Errorf("%w: audit event %d: %v", ErrCorrupt, binary.BigEndian.Uint64(k), err)
			}
			if (!f.Since.IsZero() && t.Before(f.Since)) || (f.Project != "" && r.Project != f.Project) || (f.KID != "" && r.KID != f.KID) ||
				(f.Action != "" && r.Action != f.Action) || (!f.Until.IsZero() && !t.Before(f.Until)) {
				continue
			}
			out = append(out, &admin.Event{
				ID: int64(binary.BigEndian.Uint64(k)), Time: t, ActorType: r.ActorType, ActorID: r.ActorID,
				Action: r.Action, Project: r.Project, KID: r.KID, TokenID: r.TokenID, Forced: r.Forced,
				Before: bytes.Clone(r.Before), After: bytes.Clone(r.After),
			})
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// tokenRecord is the stored form of a scoped admin token.
type tokenRecord struct {
	Project   string `json:"project"`
	Scope     string `json:"scope"`
	Label     string `json:"label"`
	Hash      []byte `json:"sha256"`
	CreatedAt string `json:"created_at"`
	RevokedAt string `json:"revoked_at,omitempty"`
}

func (r *tokenRecord) token(id string) (*admin.Token, error) {
	t := &admin.Token{ID: id, Project: r.Project, Scope: r.Scope, Label: r.Label}
	if len(r.Hash) != sha256.Size {
		return nil, fmt.Errorf("%w: token %q: bad hash", ErrCorrupt, id)
	}
	copy(t.Hash[:], r.Hash)
	var err error
	if t.CreatedAt, err = parseTime(r.CreatedAt); err != nil {
		return nil, fmt.Errorf("%w: token %q: %v", ErrCorrupt, id, err)
	}
	if t.RevokedAt, err = parseOptTime(r.RevokedAt); err != nil {
		return nil, fmt.Errorf("%w: token %q: %v", ErrCorrupt, id, err)
	}
	return t, nil
}

func loadToken(tx *bolt.Tx, id string) (*tokenRecord, error) {
	raw := tx.Bucket(bucketTokens).Get([]byte(id))
	if raw == nil {
		return nil, admin.ErrTokenNotFound
	}
	var r tokenRecord
	if err := json.Unmarshal(raw, &r); err != nil {
		return nil, fmt.Errorf("%w: token %q: %v", ErrCorrupt, id, err)
	}
	return &r, nil
}

// CreateToken implements admin.TokenStore.
func (s *Store) CreateToken(ctx context.Context, t *admin.Token) error {
	if t == nil || t.ID == "" || len(t.ID) > bolt.MaxKeySize {
		return errors.New("boltstore: invalid token")
	}
	r := tokenRecord{Project: t.Project, Scope: t.Scope, Label: t.Label, Hash: t.Hash[:], CreatedAt: formatTime(t.CreatedAt)}
	if !t.RevokedAt.IsZero() {
		r.RevokedAt = formatTime(t.RevokedAt)
	}
	val, err := json.Marshal(r)
	if err != nil {
		return fmt.Errorf("boltstore: encode token: %w", err)
	}
	err = s.update(ctx, func(tx *bolt.Tx) error {
		tb, hb := tx.Bucket(bucketTokens), tx.Bucket(bucketTokenHashes)
		if tb.Get([]byte(t.ID)) != nil || hb.Get(t.Hash[:]) != nil {
			return admin.ErrTokenExists
		}
		if err := tb.Put([]byte(t.ID), val); err != nil {
			return err
		}
		if err := hb.Put(t.Hash[:], []byte(t.ID)); err != nil {
			return err
		}
		if e := admin.EventFrom(ctx); e != nil {
			e.Before, e.After = nil, admin.TokenSnapshot(t)
			return appendAuditTx(tx, e)
		}
		return nil
	})
	if err == nil {
		markRecorded(ctx)
	}
	return err
}

// TokenByHash implements admin.TokenStore.
func (s *Store) TokenByHash(ctx context.Context, h [sha256.Size]byte) (*admin.Token, error) {
	var out *admin.Token
	err := s.view(func(tx *bolt.Tx) error {
		id := tx.Bucket(bucketTokenHashes).Get(h[:])
		if id == nil {
			return admin.ErrTokenNotFound
		}
		r, err := loadToken(tx, string(id))
		if err != nil {
			return err
		}
		out, err = r.token(string(id))
		return err
	})
	return out, err
}

// ListTokens implements admin.TokenStore.
func (s *Store) ListTokens(ctx context.Context, project string) ([]*admin.Token, error) {
	var out []*admin.Token
	err := s.view(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketTokens).ForEach(func(k, v []byte) error {
			var r tokenRecord
			if err := json.Unmarshal(v, &r); err != nil {
				return fmt.Errorf("%w: token %q: %v", ErrCorrupt, k, err)
			}
			if project != "" && r.Project != project {
				return nil
			}
			t, err := r.token(string(k))
			if err != nil {
				return err
			}
			out = append(out, t)
			return nil
		})
	})
	if err != nil {
		return nil, err
	}
	admin.SortTokens(out)
	return out, nil
}

// RevokeToken implements admin.TokenStore.
func (s *Store) RevokeToken(ctx context.Context, id string, now time.Time) (*admin.Token, error) {
	var before *admin.Token
	err := s.update(ctx, func(tx *bolt.Tx) error {
		r, err := loadToken(tx, id)
		if err != nil {
			return err
		}
		if r.RevokedAt != "" {
			return admin.ErrTokenNotFound
		}
		if before, err = r.token(id); err != nil {
			return err
		}
		r.RevokedAt = formatTime(now)
		val, err := json.Marshal(r)
		if err != nil {
			return err
		}
		if err := tx.Bucket(bucketTokens).Put([]byte(id), val); err != nil {
			return err
		}
		if e := admin.EventFrom(ctx); e != nil {
			after := before.Clone()
			after.RevokedAt = now
			e.Project, e.Before, e.After = before.Project, admin.TokenSnapshot(before), admin.TokenSnapshot(after)
			return appendAuditTx(tx, e)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	markRecorded(ctx)
	return before, nil
}
