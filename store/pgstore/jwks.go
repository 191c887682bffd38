package pgstore

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"
	"github.com/jwtgate/jwtgate/admin"
)

var _ admin.JWKSSourceStore = (*Store)(nil)

// GetJWKSSource implements admin.JWKSSourceStore.
func (s *Store) GetJWKSSource(ctx context.Context, project string) (*admin.JWKSSource, error) {
	var raw []byte
	err := s.pool.QueryRow(ctx, "SELECT doc FROM jwtgate_jwks_sources WHERE project = $1", project).Scan(&raw)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, admin.ErrSourceNotFound
	}
	if err != nil {
		return nil, wrap("get JWKS source", err)
	}
	return decodeSource(project, raw)
}

func decodeSource(project string, raw []byte) (*admin.JWKSSource, error) {
	var src admin.JWKSSource
	if err := json.Unmarshal(raw, &src); err != nil {
		return nil, fmt.Errorf("postgres store: JWKS source %q: %w", project, err)
	}
	return &src, nil
}

// ListJWKSSources implements admin.JWKSSourceStore.
func (s *Store) ListJWKSSources(ctx context.Context) ([]*admin.JWKSSource, error) {
	rows, err := s.pool.Query(ctx, "SELECT project, doc FROM jwtgate_jwks_sources ORDER BY project")
	if err != nil {
		return nil, wrap("list JWKS sources", err)
	}
	defer rows.Close()
	var out []*admin.JWKSSource
	for rows.Next() {
		var project string
		var raw []byte
		if err := rows.Scan(&project, &raw); err != nil {
			return nil, wrap("list JWKS sources", err)
		}
		src, err := decodeSource(project, raw)
		if err != nil {
			return nil, err
		}
		out = append(out, src)
	}
	if err := rows.Err(); err != nil {
		return nil, wrap("list JWKS sources", err)
	}
	return out, nil
}

// UpdateJWKSSource implements admin.JWKSSourceStore: the row is read FOR
// UPDATE, so nodes changing the same source take turns. A source that does
// not exist yet is serialised on a transaction-scoped advisory lock on the
// project's name.
func (s *Store) UpdateJWKSSource(ctx context.Context, project string, fn func(*admin.JWKSSource) (*admin.JWKSSource, error)) error {
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, "SELECT pg_advisory_xact_lock(hashtextextended('jwtgate_jwks:' || $1, 0))", project); err != nil {
			return err
		}
		var cur *admin.JWKSSource
		var raw []byte
		err := tx.QueryRow(ctx, "SELECT doc FROM jwtgate_jwks_sources WHERE project = $1 FOR UPDATE", project).Scan(&raw)
		switch {
		case errors.Is(err, pgx.ErrNoRows):
		case err != nil:
			return err
		default:
			if cur, err = decodeSource(project, raw); err != nil {
				return err
			}
		}
		next, err := fn(cur)
		if err != nil || next == nil {
			return err
		}
		doc, err := json.Marshal(next)
		if err != nil {
			return fmt.Errorf("encode JWKS source: %w", err)
		}
		_, err = tx.Exec(ctx, `INSERT INTO jwtgate_jwks_sources (project, doc) VALUES ($1, $2::jsonb)
			ON CONFLICT (project) DO UPDATE SET doc = EXCLUDED.doc`, project, string(doc))
		return err
	})
	if err != nil {
		return wrap("update JWKS source", err)
	}
	return nil
}

// DeleteJWKSSource implements admin.JWKSSourceStore.
func (s *Store) DeleteJWKSSource(ctx context.Context, project string) error {
	tag, err := s.pool.Exec(ctx, "DELETE FROM jwtgate_jwks_sources WHERE project = $1", project)
	if err != nil {
		return wrap("delete JWKS source", err)
	}
	if tag.RowsAffected() == 0 {
		return admin.ErrSourceNotFound
	}
	return nil
}
