package pgstore

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/jwtgate/jwtgate/admin"
	"github.com/jwtgate/jwtgate/engine"
)

var (
	_ admin.AuditStore = (*Store)(nil)
	_ admin.TokenStore = (*Store)(nil)
)

// AppendAudit implements admin.AuditStore: one committed INSERT.
func (s *Store) AppendAudit(ctx context.Context, e *admin.Event) error {
	if err := insertAudit(ctx, s.pool, e); err != nil {
		return wrap("append audit event", err)
	}
	return nil
}

// querier is a pool or a transaction.
type querier interface {
	Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error)
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}

func insertAudit(ctx context.Context, q querier, e *admin.Event) error {
	var before, after any
	if len(e.Before) > 0 {
		before = string(e.Before)
	}
	if len(e.After) > 0 {
		after = string(e.After)
	}
	return q.QueryRow(ctx, `INSERT INTO jwtgate_audit
		(at, actor_type, actor_id, action, project, kid, token_id, forced, before, after)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9::jsonb, $10::jsonb) RETURNING id`,
		e.Time.UTC(), e.ActorType, e.ActorID, e.Action, e.Project, e.KID, e.TokenID, e.Forced, before, after).Scan(&e.ID)
}

// inTx runs a key change: on the pool when ctx carries no audit event,
// else in one transaction with the event's record (admin.WithEvent),
// marking the event recorded once committed.
func (s *Store) inTx(ctx context.Context, fn func(q querier) error) error {
	e := admin.EventFrom(ctx)
	if e == nil {
		return fn(s.pool)
	}
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error { return fn(tx) })
	if err == nil {
		e.Recorded = true
	}
	return err
}

// auditTx records the event ctx carries, if any, with the key as it was
// and became in the transaction (nil: did not exist).
func auditTx(ctx context.Context, q querier, before, after *engine.Key) error {
	e := admin.EventFrom(ctx)
	if e == nil {
		return nil
	}
	admin.SetKeyChange(e, before, after)
	return insertAudit(ctx, q, e)
}

// ListAudit implements admin.AuditStore.
func (s *Store) ListAudit(ctx context.Context, f admin.AuditFilter) ([]*admin.Event, error) {
	if f.Limit < 1 || f.Limit > admin.MaxAuditLimit {
		return nil, fmt.Errorf("postgres store: audit limit must be 1 to %d", admin.MaxAuditLimit)
	}
	var where []string
	var args []any
	add := func(cond string, v any) {
		args = append(args, v)
		where = append(where, strings.ReplaceAll(cond, "$?", "$"+strconv.Itoa(len(args))))
	}
	if f.Project != "" {
		add("project = $?", f.Project)
	}
	if f.KID != "" {
		add("kid = $?", f.KID)
	}
	if f.Action != "" {
		add("action = $?", f.Action)
	}
	if !f.Since.IsZero() {
		add("at >= $?", f.Since.UTC())
	}
	if !f.Until.IsZero() {
		add("at < $?", f.Until.UTC())
	}
	if f.Before > 0 {
		add("id < $?", f.Before)
	}
	q := `SELECT id, at, actor_type, actor_id, action, project, kid, token_id, forced, before::text, after::text FROM jwtgate_audit`
	if len(where) > 0 {
		q += " WHERE " + strings.Join(where, " AND ")
	}
	args = append(args, f.Limit)
	q += " ORDER BY id DESC LIMIT $" + strconv.Itoa(len(args))
	rows, err := s.pool.Query(ctx, q, args...)
	if err != nil {
		return nil, wrap("list audit events", err)
	}
	defer rows.Close()
	var out []*admin.Event
	for rows.Next() {
		var e admin.Event
		var before, after *string
		if err := rows.Scan(&e.ID, &e.Time, &e.ActorType, &e.ActorID, &e.Action, &e.Project, &e.KID, &e.TokenID, &e.Forced, &before, &after); err != nil {
			return nil, wrap("list audit events", err)
		}
		e.Time = e.Time.UTC()
		if before != nil {
			e.Before = []byte(*before)
		}
		if after != nil {
			e.After = []byte(*after)
		}
		out = append(out, &e)
	}
	if err := rows.Err(); err != nil {
		return nil, wrap("list audit events", err)
	}
	return out, nil
}

const tokenColumns = "id, project, scope, label, hash, created_at, revoked_at"

func scanToken(row pgx.Row) (*admin.Token, error) {
	var t admin.Token
	var hash []byte
	var revoked *time.Time
	if err := row.Scan(&t.ID, &t.Project, &t.Scope, &t.Label, &hash, &t.CreatedAt, &revoked); err != nil {
		return nil, err
	}
	if len(hash) != sha256.Size {
		return nil, fmt.Errorf("postgres store: token %q: stored hash is corrupt", t.ID)
	}
	copy(t.Hash[:], hash)
	t.CreatedAt = t.CreatedAt.UTC()
	if revoked != nil {
		t.RevokedAt = revoked.UTC()
	}
	return &t, nil
}

// CreateToken implements admin.TokenStore.
func (s *Store) CreateToken(ctx context.Context, t *admin.Token) error {
	var revoked *time.Time
	if !t.RevokedAt.IsZero() {
		r := t.RevokedAt.UTC()
		revoked = &r
	}
	err := s.inTx(ctx, func(q querier) error {
		if _, err := q.Exec(ctx, "INSERT INTO jwtgate_admin_tokens ("+tokenColumns+") VALUES ($1, $2, $3, $4, $5, $6, $7)",
			t.ID, t.Project, t.Scope, t.Label, t.Hash[:], t.CreatedAt.UTC(), revoked); err != nil {
			return err
		}
		if e := admin.EventFrom(ctx); e != nil {
			e.Before, e.After = nil, admin.TokenSnapshot(t)
			return insertAudit(ctx, q, e)
		}
		return nil
	})
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) && pgErr.Code == "23505" {
		return admin.ErrTokenExists
	}
	if err != nil {
		return wrap("create admin token", err)
	}
	return nil
}

// TokenByHash implements admin.TokenStore: one lookup by the unique hash.
func (s *Store) TokenByHash(ctx context.Context, h [sha256.Size]byte) (*admin.Token, error) {
	t, err := scanToken(s.pool.QueryRow(ctx, "SELECT "+tokenColumns+" FROM jwtgate_admin_tokens WHERE hash = $1", h[:]))
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, admin.ErrTokenNotFound
	}
	if err != nil {
		return nil, wrap("get admin token", err)
	}
	return t, nil
}

// ListTokens implements admin.TokenStore.
func (s *Store) ListTokens(ctx context.Context, project string) ([]*admin.Token, error) {
	rows, err := s.pool.Query(ctx, "SELECT "+tokenColumns+` FROM jwtgate_admin_tokens
		WHERE $1 = '' OR project = $1 ORDER BY created_at, id COLLATE "C"`, project)
	if err != nil {
		return nil, wrap("list admin tokens", err)
	}
	defer rows.Close()
	var out []*admin.Token
	for rows.Next() {
		t, err := scanToken(rows)
		if err != nil {
			return nil, wrap("list admin tokens", err)
		}
		out = append(out, t)
	}
	if err := rows.Err(); err != nil {
		return nil, wrap("list admin tokens", err)
	}
	admin.SortTokens(out)
	return out, nil
}

// RevokeToken implements admin.TokenStore.
func (s *Store) RevokeToken(ctx context.Context, id string, now time.Time) (*admin.Token, error) {
	var t *admin.Token
	err := s.inTx(ctx, func(q querier) error {
		var err error
		t, err = scanToken(q.QueryRow(ctx, `UPDATE jwtgate_admin_tokens SET revoked_at = $2
			WHERE id = $1 AND revoked_at IS NULL
			RETURNING id, project, scope, label, hash, created_at, NULL::timestamptz`, id, now.UTC()))
		if err != nil {
			return err
		}
		if e := admin.EventFrom(ctx); e != nil {
			after := t.Clone()
			after.RevokedAt = now.UTC()
			e.Project, e.Before, e.After = t.Project, admin.TokenSnapshot(t), admin.TokenSnapshot(after)
			return insertAudit(ctx, q, e)
		}
		return nil
	})
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, admin.ErrTokenNotFound
	}
	if err != nil {
		return nil, wrap("revoke admin token", err)
	}
	return t, nil
}
