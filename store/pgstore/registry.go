package pgstore

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/jwtgate/jwtgate/engine"
	"github.com/jwtgate/jwtgate/engine/parallel"
)

var (
	_ engine.RegistryScanner  = (*Store)(nil)
	_ engine.RecentKeysLoader = (*Store)(nil)
	_ engine.ChangeFeed       = (*Store)(nil)
)

// ScanKIDs implements engine.RegistryScanner: one sequential read of the
// kid and project columns (about 1 s for a million keys), for the
// Verifier's index of registered kids.
func (s *Store) ScanKIDs(ctx context.Context, fn func(kid, project []byte)) error {
	rows, err := s.pool.Query(ctx, "SELECT kid, project FROM jwtgate_keys")
	if err != nil {
		return wrap("scan kids", err)
	}
	defer rows.Close()
	for rows.Next() {
		v := rows.RawValues()
		if len(v) != 2 {
			return wrap("scan kids", errors.New("unexpected row shape"))
		}
		fn(v[0], v[1])
	}
	if err := rows.Err(); err != nil {
		return wrap("scan kids", err)
	}
	return nil
}

// RecentKeys implements engine.RecentKeysLoader: the n most recently used
// keys (never-used keys last), so that a node joining a tier warms its key
// cache with one query instead of one per key. The recency order is sorted
// on (kid, last_used_at) alone before the rows are fetched, and the keys
// are decoded on all cores.
func (s *Store) RecentKeys(ctx context.Context, n int) ([]*engine.Key, error) {
	if n <= 0 {
		return nil, nil
	}
	type raw struct {
		kid, project, label, status string
		der                         []byte
		created, updated            time.Time
		last                        *time.Time
		counted                     int64
	}
	var rows []raw
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		// Enough sort memory for the recency order of a few million keys.
		if _, err := tx.Exec(ctx, "SET LOCAL work_mem = '128MB'"); err != nil {
			return err
		}
		r, err := tx.Query(ctx, `SELECT k.kid, k.project, k.label, k.status, k.public_key,
			       k.created_at, k.updated_at, k.last_used_at, k.verified_count
			FROM (SELECT kid, last_used_at FROM jwtgate_keys
			      ORDER BY last_used_at DESC NULLS LAST, kid COLLATE "C" LIMIT $1) AS recent
			JOIN jwtgate_keys AS k USING (kid)
			ORDER BY recent.last_used_at DESC NULLS LAST, k.kid COLLATE "C"`, n)
		if err != nil {
			return err
		}
		defer r.Close()
		rows = make([]raw, 0, min(n, 1<<20))
		for r.Next() {
			var x raw
			if err := r.Scan(&x.kid, &x.project, &x.label, &x.status, &x.der, &x.created, &x.updated, &x.last, &x.counted); err != nil {
				return err
			}
			rows = append(rows, x)
		}
		return r.Err()
	})
	if err != nil {
		return nil, wrap("recent keys", err)
	}
	out := make([]*engine.Key, len(rows))
	errs := make([]error, len(rows))
	parallel.For(len(rows), func(i int) {
		x := &rows[i]
		out[i], errs[i] = decodeKey(x.kid, x.project, x.label, x.status, x.der, x.created, x.updated, x.last, x.counted)
	})
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return out, nil
}

// ImportKeys stores many new keys with one COPY, in one transaction (bulk
// loading for tools and benchmarks). Like Create, a kid that exists
// already is engine.ErrKIDTaken, and then nothing is stored. Each key is
// announced on the change channel like any insert.
func (s *Store) ImportKeys(ctx context.Context, ks []*engine.Key) error {
	rows := make([][]any, 0, len(ks))
	ders := make(map[any][]byte) // keys shared between kids are encoded once
	for _, k := range ks {
		if k == nil || k.Public == nil || k.KID == "" || k.Project == "" {
			return errors.New("postgres store: import: a key lacks its kid, project or public key")
		}
		der, ok := ders[k.Public]
		if !ok {
			var err error
			if der, err = x509.MarshalPKIXPublicKey(k.Public); err != nil {
				return fmt.Errorf("postgres store: encode public key: %w", err)
			}
			ders[k.Public] = der
		}
		var last *time.Time
		if !k.LastUsedAt.IsZero() {
			t := k.LastUsedAt.UTC()
			last = &t
		}
		status := k.Status
		if status == "" {
			status = engine.StatusActive
		}
		rows = append(rows, []any{k.KID, k.Project, k.Label, string(status), der,
			k.CreatedAt.UTC(), k.UpdatedAt.UTC(), last, clampCount(k.VerifiedCount)})
	}
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		_, err := tx.CopyFrom(ctx, pgx.Identifier{"jwtgate_keys"},
			[]string{"kid", "project", "label", "status", "public_key", "created_at", "updated_at", "last_used_at", "verified_count"},
			pgx.CopyFromRows(rows))
		return err
	})
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) && pgErr.Code == "23505" {
		return engine.ErrKIDTaken
	}
	if err != nil {
		return wrap("import keys", err)
	}
	return nil
}
